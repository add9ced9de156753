/**
 * Restores a Barman backup into an empty local sandbox with `barman recover` (run locally, no
 * SSH, confined with bubblewrap), then archive recovery to the drill's target with the physical
 * restorer's helpers.
 */
import { chownSync, existsSync, mkdirSync, renameSync, rmdirSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { type Backup, type DrillPlan, detailOf, type Reached, type RecoveryTarget } from "../../model.js";
import { mountNoexec, mountPointsUnder, unmountUnder } from "../../runtimes/noexec-mounts.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { barmanJson } from "../../sources/barman/barman-cli.js";
import { BackupDefectError, VerifierError } from "../../util/errors.js";
import { isRoot, lookupUser } from "../../util/os-user.js";
import { lastLines, runProcess } from "../../util/process.js";
import { DEFAULT_WAL_SEGMENT_SIZE, parseLsn, segmentName, segmentOfLsn } from "../../wal/wal-names.js";
import type { RestoreContext, RestoreOutcome, Restorer } from "../restorer.js";
import { runBarmanConfined } from "./barman-confined.js";
import { recoverWithTool, requireLocal } from "./tool-restore.js";

/** Options of the Barman restorer. */
export interface BarmanRestorerOptions {
  /** barman.conf passed with `-c`. */
  configFile: string;
  /** The Barman server name. */
  server: string;
  /** OS user barman runs as when Attest is root. */
  barmanUser: string;
  /** Superuser of the backed-up cluster (to connect before the sandbox's own login exists). */
  superuser: string;
}

/** Barman messages that say the drill or the host is wrong, not the backup. */
const NOT_A_DEFECT =
  /is before the backup end time|Illegal target|Illegal use of recovery_target|Unknown backup|Unknown server|please run barman as|Read-only file system|No space left on device/i;

/** `barman recover` arguments for a target; `latest` (or none) = no target: all WAL to the end. */
export function recoverTargetArgs(target: RecoveryTarget | undefined): string[] {
  switch (target?.kind) {
    case "immediate":
      return ["--target-immediate", "--target-action", "promote"];
    case "time":
      return ["--target-time", target.time, "--target-action", "promote"];
    case "lsn":
      return ["--target-lsn", target.lsn, "--target-action", "promote"];
    default:
      return [];
  }
}

/** Restores Barman backups with `barman recover` (WAL copied by Barman, never `--get-wal`). */
export class BarmanRestorer implements Restorer {
  readonly name = "barman";
  readonly sandboxMode = "empty" as const;
  readonly #opts: BarmanRestorerOptions;

  constructor(opts: BarmanRestorerOptions) {
    this.#opts = Object.freeze({ ...opts });
  }

  /** The sandbox reads nothing of Barman's: barman itself copies the backup and its WAL in. */
  inputs(_plan: DrillPlan): string[] {
    return [];
  }

  async restore(sandbox: Sandbox, ctx: RestoreContext): Promise<RestoreOutcome> {
    requireLocal(sandbox, "barman");
    const { backup } = ctx.plan;
    const target: RecoveryTarget = ctx.plan.target ?? { kind: "latest" };
    const notes: string[] = [];
    // Why a staging directory: barman must run as its barman_user (it drops to it when started
    // as root, and its lock files in barman_home must stay that user's), and that user cannot
    // enter the sandbox's private directory (0700, the sandbox user's). The sandbox base
    // directory is traversable (0711) and on the same filesystem, so barman recovers into a
    // sibling it owns, which is then handed to the sandbox user (chown as root, like a cloned
    // volume) and renamed into place: no second copy, and Barman's catalog is only read.
    const staging = join(dirname(dirname(sandbox.dataDir)), `${basename(dirname(sandbox.dataDir))}-barman`);
    const barmanUser = isRoot() ? lookupUser(this.#opts.barmanUser) : undefined;
    if (isRoot() && !barmanUser)
      throw new VerifierError(`barman_user "${this.#opts.barmanUser}" does not exist on this host`);
    // Barman puts each tablespace where it was on the primary unless told otherwise: every one
    // goes into a sibling it owns, moved into the data directory afterwards
    const tsStaging = `${staging}-tablespaces`;
    const cli = { configFile: this.#opts.configFile, user: this.#opts.barmanUser };
    const tablespaces = await barmanTablespaces(cli, this.#opts.server, backup.id);
    try {
      mkdirSync(staging, { mode: 0o700 });
      if (barmanUser) chownSync(staging, barmanUser.uid, barmanUser.gid);
      if (tablespaces.length) {
        mkdirSync(tsStaging, { mode: 0o700 });
        if (barmanUser) chownSync(tsStaging, barmanUser.uid, barmanUser.gid);
      }
      // never --get-wal: Barman 3.4 then writes restore_command 'sudo -u barman barman get-wal …',
      // which the sandbox user cannot run; without it Barman copies the WAL in (pg_wal, or
      // barman_wal for a target) and the restored copy needs nothing of Barman's afterwards
      const args = [
        "recover",
        "--no-get-wal",
        ...recoverTargetArgs(target),
        ...tablespaces.flatMap((t) => ["--tablespace", `${t.name}:${tsStaging}/${t.oid}`]),
        this.#opts.server,
        backup.id,
        staging,
      ];
      ctx.progress(`barman recover ${backup.id}`);
      const started = Date.now();
      // confined: what Barman copies and then writes into (links included) reaches nothing else
      const r = await runBarmanConfined(cli, lookupUser(this.#opts.barmanUser), args, {
        writable: tablespaces.length ? [staging, tsStaging] : [staging],
        timeoutMs: ctx.timeoutMs,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
      if (r.code !== 0) {
        const tail = lastLines(`${r.stdout}\n${r.stderrTail}`, 4);
        const msg = `barman recover of ${backup.id} failed (exit ${r.code ?? r.signal}): ${tail}`;
        // a target Barman refuses, a backup gone since listing, the wrong OS user: not the backup's defect
        if (r.timedOut || NOT_A_DEFECT.test(tail)) throw new VerifierError(msg);
        throw new BackupDefectError(msg);
      }
      notes.push(
        `barman recover copied ${backup.id} and its WAL in ${Math.round((Date.now() - started) / 100) / 10} s`,
      );
      const owner = statSync(sandbox.dataDir);
      if (isRoot()) {
        // -P -h: links are given away themselves, never followed out of the staging directories
        const dirs = tablespaces.length ? [staging, tsStaging] : [staging];
        await runProcess("chown", ["-R", "-P", "-h", `${owner.uid}:${owner.gid}`, "--", ...dirs], {
          timeoutMs: 3_600_000,
          ...(ctx.signal ? { signal: ctx.signal } : {}),
        });
      }
      if (tablespaces.length) {
        renameSync(tsStaging, join(staging, BARMAN_TABLESPACES));
        notes.push(
          `tablespaces ${tablespaces.map((t) => `${t.name} (${t.oid})`).join(", ")} recovered inside the sandbox, not at their original locations`,
        );
      }
      // as root the data directory is a noexec bind mount of its own (local runtime): it is
      // swapped for the staging directory while unmounted, then made noexec again
      const mounted = mountPointsUnder(sandbox.dataDir).length > 0;
      if (mounted) await unmountUnder(sandbox.dataDir);
      rmdirSync(sandbox.dataDir);
      renameSync(staging, sandbox.dataDir);
      if (mounted) await mountNoexec([sandbox.dataDir]);
    } finally {
      if (existsSync(staging)) await rm(staging, { recursive: true, force: true, maxRetries: 3 });
      if (existsSync(tsStaging)) await rm(tsStaging, { recursive: true, force: true, maxRetries: 3 });
    }
    return recoverWithTool(sandbox, ctx, notes, {
      target,
      superuser: this.#opts.superuser,
      // Barman puts WAL there for a PITR target; for `latest` it fills pg_wal instead, which
      // recovery reads when the restore_command finds nothing
      archiveDir: join(sandbox.dataDir, "barman_wal"),
      // Barman's links name the staging directories, whose content is now in the data directory
      moved: [
        { from: staging, to: "." },
        { from: tsStaging, to: BARMAN_TABLESPACES },
      ],
      checkEnd: (_server, reached) => checkReachedLastWal(backup, reached),
    });
  }
}

/** Where Barman's relocated tablespaces land inside the data directory (then moved per OID). */
const BARMAN_TABLESPACES = "attest_barman_tablespaces";

/** A tablespace of a Barman backup, as `show-backup` lists it. */
interface BarmanTablespace {
  name: string;
  oid: number | string;
  location?: string;
}

/**
 * The tablespaces of a backup. A name Barman's NAME:LOCATION rule cannot carry (a colon) would
 * leave that tablespace at its original path on this host: refused.
 */
export async function barmanTablespaces(
  cli: { configFile: string; user: string },
  server: string,
  backupId: string,
): Promise<Array<{ name: string; oid: string }>> {
  const shown = await barmanJson<Record<string, { tablespaces?: BarmanTablespace[] | null }>>(cli, [
    "show-backup",
    server,
    backupId,
  ]);
  const list = Object.values(shown)[0]?.tablespaces ?? [];
  return list.map((t) => {
    const oid = String(t.oid);
    if (!/^\d+$/.test(oid) || !t.name || /[:\n\r]/.test(t.name))
      throw new VerifierError(
        `tablespace "${t.name}" (oid ${oid}) of ${backupId} cannot be relocated with barman recover --tablespace NAME:LOCATION; Attest does not let it be written to its original path`,
      );
    return { name: t.name, oid };
  });
}

/** For target `latest`: replay must have reached the last WAL segment Barman's catalog holds. */
export function checkReachedLastWal(backup: Backup, reached: Reached): void {
  const detail = detailOf(backup, "barman");
  const last = detail?.walLast;
  if (!last || !reached.lsn || reached.timeline === undefined) return;
  const segSize = detail?.walSegmentSize || DEFAULT_WAL_SEGMENT_SIZE;
  const at = segmentName(reached.timeline, segmentOfLsn(parseLsn(reached.lsn) - 1n, segSize), segSize);
  // only comparable on one timeline: a later timeline's WAL is followed by recovery_target_timeline
  if (at.slice(0, 8) !== last.slice(0, 8) || at >= last) return;
  throw new BackupDefectError(
    `the end of Barman's WAL was not reached: replay ended at ${reached.lsn} (segment ${at}), but the catalog holds WAL up to ${last}`,
  );
}
