/**
 * Restores a pgBackRest backup set into an empty local sandbox with `pgbackrest restore`
 * (run as the sandbox user, so the files are its own; it only reads the repository), then
 * archive recovery with `pgbackrest archive-get` as restore_command, promoted at the end.
 */
import { lstatSync, unlinkSync } from "node:fs";
import { posix } from "node:path";
import { type Backup, type DrillPlan, detailOf, type Reached, type RecoveryTarget } from "../../model.js";
import { openSandboxStore } from "../../runtimes/local/store-relay.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { withClient } from "../../runtimes/sql.js";
import {
  type PgbackrestRepo,
  QUIET_ARGS,
  repoArgs,
  repoPathOf,
  repoStoreOf,
} from "../../sources/pgbackrest/pgbackrest-args.js";
import { pgbackrestSettingsEnv } from "../../sources/pgbackrest/pgbackrest-confined.js";
import { BackupDefectError, VerifierError } from "../../util/errors.js";
import { parseLsn, segmentName, segmentOfLsn } from "../../wal/wal-names.js";
import { pgTimestamp } from "../physical/recovery-config.js";
import { sandboxSh } from "../physical/sandbox-shell.js";
import type { RestoreContext, RestoreOutcome, Restorer } from "../restorer.js";
import { rejectProblem, requireLocal, restoreWithTool } from "./tool-restore.js";

/** Options of the pgBackRest restorer. */
export interface PgbackrestRestorerOptions extends PgbackrestRepo {
  /** Superuser of the backed-up cluster (to connect before the sandbox's own login exists). */
  superuser: string;
}

/**
 * pgBackRest error codes that blame the repository's content (026 checksum, 028 file invalid,
 * 029 format, 055 file missing); option, lock and permission errors blame the verifier.
 */
const DEFECT_CODES = new Set(["026", "028", "029", "055"]);
const DEFECT_TEXT = /missing file|checksum|invalid|unable to decompress|unexpected eof|is truncated/i;

/** Where pgBackRest's tablespaces land inside the data directory (then moved per OID). */
const PGBACKREST_TABLESPACES = "attest_pgbackrest_tablespaces";

/** Restores pgBackRest backup sets (local runtime only: the docker image has no pgbackrest). */
export class PgbackrestRestorer implements Restorer {
  readonly name = "pgbackrest";
  readonly sandboxMode = "empty" as const;
  readonly #opts: PgbackrestRestorerOptions;

  constructor(opts: PgbackrestRestorerOptions) {
    this.#opts = Object.freeze({ ...opts });
  }

  inputs(_plan: DrillPlan): string[] {
    const repo = repoPathOf(this.#opts);
    const trust = repoStoreOf(this.#opts)?.trustFiles ?? [];
    return [this.#opts.config_file, repo, ...trust].filter((p): p is string => Boolean(p));
  }

  async preflight(plan: DrillPlan): Promise<void> {
    rejectProblem(plan.backup);
  }

  /**
   * restore_command for the restored cluster: archive-get from the same repository, read-only;
   * `via` is the store forwarder an object-store repository is reached through.
   */
  restoreCommand(dataDir: string, repo: readonly string[] = repoArgs(this.#opts), via?: string): string {
    // double quotes, not single: pgbackrest writes --recovery-option values between single quotes unescaped
    // archive-get checks the WAL against pg_control of pg1-path (system id, version)
    const args = [...(via ? [via] : []), "pgbackrest", ...repo, ...QUIET_ARGS, `--pg1-path=${dataDir}`]
      .map(shellWord)
      .join(" ");
    // PostgreSQL replaces %f/%p and reads %% as one %
    return `${args.replace(/%/g, "%%")} archive-get %f "%p"`;
  }

  async restore(sandbox: Sandbox, ctx: RestoreContext): Promise<RestoreOutcome> {
    const { backup } = ctx.plan;
    await this.preflight(ctx.plan);
    requireLocal(sandbox, "pgbackrest");
    // the sandbox sees an unreadable configuration (an S3 repository's keys, 0600) as its private
    // copy; a posix repository it cannot read stays a refusal (a copy of a whole repository is no answer)
    const repo: PgbackrestRepo = {
      ...this.#opts,
      ...(this.#opts.config_file ? { config_file: sandbox.inputPath(this.#opts.config_file) } : {}),
    };
    await this.#checkAccess(sandbox, repo);
    // a private copy of the configuration holds the store's keys: gone once recovery is over,
    // before the restored server runs anything of the backup's for the checks
    await using _keys = forgetPrivateCopy(this.#opts.config_file, repo.config_file);
    const target: RecoveryTarget = ctx.plan.target ?? { kind: "latest" };
    const notes: string[] = [];
    // an S3 repository: network to its store only, for pgbackrest restore and archive-get alike
    const store = repoStoreOf(this.#opts);
    await using access = store
      ? await openSandboxStore(
          posix.dirname(sandbox.dataDir),
          store.endpoint,
          pgbackrestSettingsEnv(),
          store.names,
        )
      : undefined;
    if (access && store)
      notes.push(
        `the repository's object store ${store.endpoint.host}:${store.endpoint.port} was the only network pgbackrest had (store relay)`,
      );
    // a CA file the sandbox sees as a private copy: named on the command line, which beats the config file
    const n = this.#opts.repo;
    const inRepo = [
      ...repoArgs(repo),
      ...(store?.caFile ? [`--repo${n}-storage-ca-file=${sandbox.inputPath(store.caFile)}`] : []),
      ...(store?.caPath ? [`--repo${n}-storage-ca-path=${sandbox.inputPath(store.caPath)}`] : []),
    ];
    const restoreCommand = this.restoreCommand(sandbox.dataDir, inRepo, access?.script);
    const lockDir = posix.join(posix.dirname(sandbox.dataDir), "pgbackrest-lock");
    const tsDir = posix.join(await writableBeside(sandbox), "pgbackrest-tablespaces");
    const args = [
      ...inRepo,
      ...QUIET_ARGS,
      `--lock-path=${lockDir}`,
      `--pg1-path=${sandbox.dataDir}`,
      `--set=${backup.id}`,
      // tablespaces go into the sandbox, never to their original paths on this host (pgBackRest
      // refuses a path inside PGDATA: a sibling, moved in afterwards)
      `--tablespace-map-all=${tsDir}`,
      ...typeArgs(target),
      "--archive-mode=off",
      // a damaged file fails at once instead of after pgbackrest's retries (15 s apart)
      "--job-retry=0",
      ...(restoreCommand.includes("'") ? [] : [`--recovery-option=restore_command=${restoreCommand}`]),
      "restore",
    ];
    // awaited here: the resources held with `await using` above must outlive the restore
    return await restoreWithTool(
      sandbox,
      ctx,
      notes,
      {
        program: access ? access.script : "pgbackrest",
        args: access ? ["pgbackrest", ...args] : args,
        progress: `pgbackrest restore --set=${backup.id}`,
        tailLines: 3,
        failure: (tail, timedOut) => restoreFailure(backup.id, tail, timedOut),
        done: (ms) =>
          `pgbackrest restore --set=${backup.id} wrote the data directory in ${Math.round(ms / 1000)} s`,
        tablespaces: {
          from: tsDir,
          to: PGBACKREST_TABLESPACES,
          required: false,
          note: "tablespaces restored inside the sandbox (--tablespace-map-all)",
        },
      },
      {
        target,
        superuser: this.#opts.superuser,
        restoreCommand: { command: restoreCommand, why: "WAL comes from the pgBackRest repository" },
        // prepareDataDir needs an archive; the restore_command written just before start replaces its cp
        archiveDir: posix.join(repoPathOf(this.#opts) ?? "/nonexistent", "archive", this.#opts.stanza),
        moved: [{ from: tsDir, to: PGBACKREST_TABLESPACES }],
        explainStop: (facts) =>
          facts.lastRestored
            ? `pgbackrest archive-get could not deliver the segment after ${facts.lastRestored} (missing from the repository?)`
            : "pgbackrest archive-get delivered no WAL at all",
        note: "restore_command: pgbackrest archive-get from the same repository (read-only); archive_mode off",
        checkEnd: (server, reached) => checkArchiveEnd(server, backup, reached),
        // the relay and the private copy of the keys go before Attest's first query after promotion
        closeStore: async () => {
          await access?.close();
          await _keys[Symbol.asyncDispose]();
        },
      },
    );
  }

  /** The sandbox user must read the repository; say so plainly when it cannot. */
  async #checkAccess(sandbox: Sandbox, inside: PgbackrestRepo): Promise<void> {
    const repo = repoPathOf(inside);
    const probes = [
      ...(inside.config_file ? [inside.config_file] : []),
      ...(repo ? [posix.join(repo, "backup", inside.stanza, "backup.info")] : []),
      ...(repo ? [posix.join(repo, "archive", inside.stanza, "archive.info")] : []),
    ];
    for (const p of probes) {
      const r = await sandboxSh(sandbox, 'test -r "$1"', [p], { allowFailure: true, timeoutMs: 10_000 });
      if (r.code !== 0)
        throw new VerifierError(
          `${p} is not readable by the sandbox user: pgbackrest restore runs as that user and needs read access to the repository (grant it with a group or o+rX)`,
        );
    }
  }
}

/**
 * For target `latest`: replay must have reached the newest archived segment `pgbackrest info`
 * lists (archive max); PostgreSQL itself ends recovery quietly when archive-get finds nothing.
 */
async function checkArchiveEnd(sandbox: Sandbox, backup: Backup, reached: Reached): Promise<void> {
  const max = detailOf(backup, "pgbackrest")?.archiveMax;
  if (!max || !reached.lsn) return;
  const segSize = Number(
    await withClient(
      sandbox,
      "postgres",
      async (c) =>
        (
          await c.query<{ s: string }>(
            "select setting as s from pg_catalog.pg_show_all_settings() where name operator(pg_catalog.=) 'wal_segment_size'::pg_catalog.text",
          )
        ).rows[0]?.s,
    ),
  );
  if (!segSize) return;
  const tli = reached.timeline ?? 1;
  const last = segmentName(tli, segmentOfLsn(parseLsn(reached.lsn) - 1n, segSize), segSize);
  // names of one timeline sort like positions; a newer timeline in the archive is another matter
  if (max.slice(0, 8) !== last.slice(0, 8) || last >= max) return;
  const next = segmentName(tli, segmentOfLsn(parseLsn(reached.lsn) - 1n, segSize) + 1, segSize);
  throw new BackupDefectError(
    `the end of the archive was not reached: replay ended at ${reached.lsn} in ${last}${reached.timestamp ? ` (last transaction at ${reached.timestamp})` : ""}, ` +
      `but pgbackrest info lists WAL up to ${max}; archive-get could not deliver ${next} (missing from the repository?)`,
  );
}

/** What a failed pgbackrest restore means: the repository's content (`fail`) or the verifier's doing. */
function restoreFailure(id: string, tail: string, timedOut: boolean): Error {
  if (timedOut) return new VerifierError(`pgbackrest restore of ${id} timed out: ${tail}`);
  const code = /ERROR: \[(\d{3})\]/.exec(tail)?.[1];
  // 030-040: options, a running postmaster, a non-empty target: the verifier's doing
  const ours = code !== undefined && Number(code) >= 30 && Number(code) <= 40;
  const defect = !ours && ((code !== undefined && DEFECT_CODES.has(code)) || DEFECT_TEXT.test(tail));
  const msg = `pgbackrest restore of ${id} failed: ${tail}`;
  return defect && !/permission denied/i.test(tail) ? new BackupDefectError(msg) : new VerifierError(msg);
}

/** A directory of the sandbox beside its data directory that the sandbox user may write. */
async function writableBeside(sandbox: Sandbox): Promise<string> {
  const r = await sandboxSh(
    sandbox,
    'for d in "$1/home" "$1"; do if [ -d "$d" ] && [ -w "$d" ]; then echo "$d"; exit 0; fi; done; exit 1',
    [posix.dirname(sandbox.dataDir)],
    { allowFailure: true, timeoutMs: 10_000 },
  );
  const dir = r.stdout.trim();
  if (r.code !== 0 || !dir)
    throw new VerifierError(
      "no writable directory beside the sandbox's data directory for pgBackRest's tablespaces",
    );
  return dir;
}

/** A word for sh: bare when safe, else double-quoted with $ ` " \\ escaped. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `"${s.replace(/(["\\$`])/g, "\\$1")}"`;
}

/** --type/--target/--target-action of a recovery target. */
function typeArgs(target: RecoveryTarget): string[] {
  switch (target.kind) {
    case "latest":
      return ["--type=default"];
    case "immediate":
      return ["--type=immediate", "--target-action=promote"];
    case "time":
      return ["--type=time", `--target=${pgTimestamp(target.time)}`, "--target-action=promote"];
    case "lsn":
      return ["--type=lsn", `--target=${target.lsn}`, "--target-action=promote"];
  }
}

/**
 * Removes the sandbox's private copy of the file `host` when disposed. The copy lies in the
 * sandbox's root-owned inputs directory (local runtime: its path is the host's), where the
 * sandbox's account cannot swap it for a link; a plain file is unlinked, nothing is followed.
 */
function forgetPrivateCopy(host: string | undefined, inside: string | undefined): AsyncDisposable {
  return {
    async [Symbol.asyncDispose]() {
      if (!host || !inside || inside === host) return;
      if (lstatSync(inside, { throwIfNoEntry: false })?.isFile()) unlinkSync(inside);
    },
  };
}
