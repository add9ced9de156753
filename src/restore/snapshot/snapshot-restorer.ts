/**
 * Restores a data directory taken from a filesystem or volume snapshot. Without a
 * backup_label the copy is crash-consistent and crash recovery brings it up; with the
 * label kept beside it (low-level backup API), the label goes into the data directory and
 * archive recovery replays to the backup's end (or the drill's target).
 *
 * The data either is copied from a host directory or is already the sandbox's data
 * directory (volume runtimes provision with `dataDir`, e.g. a cloned block volume).
 */
import { existsSync } from "node:fs";
import { posix } from "node:path";
import type { DrillPlan, RecoveryTarget } from "../../model.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { RefusedFile, readBackupFile } from "../../util/backup-file.js";
import { BackupDefectError, describeError, VerifierError } from "../../util/errors.js";
import { readWalArchive } from "../../wal/wal-archive.js";
import { parseWalFileName } from "../../wal/wal-names.js";
import { checkReachedEnd, explainStop } from "../physical/physical-restorer.js";
import { describeTarget } from "../physical/recovery-config.js";
import { recoveryOutcome, runRecovery } from "../physical/recovery-run.js";
import { sandboxSh, writeSandboxFile } from "../physical/sandbox-shell.js";
import type { RestoreContext, RestoreOutcome, Restorer } from "../restorer.js";

/** Options of the snapshot restorer. */
export interface SnapshotRestorerOptions {
  /** Superuser of the snapshotted cluster (to connect before the sandbox's own login exists). */
  superuser: string;
  /** WAL archive host path: needed to replay from a backup_label beyond what pg_wal holds. */
  walArchive?: string;
  /** Copy the snapshot from this host directory; absent: the sandbox's data directory already holds it. */
  copyFrom?: string;
  /** backup_label kept beside the snapshot: a host file or the label's text. */
  backupLabel?: { path: string } | { text: string };
  /** tablespace_map kept beside the snapshot, when there is one. */
  tablespaceMap?: { path: string } | { text: string };
}

/**
 * The text of a file kept with a snapshot (backup_label, tablespace_map). Whoever wrote the
 * snapshot chose its type: a link to a host file must not hand that file (read as root) to the
 * sandbox and into the drill's notes, nor a FIFO block the drill.
 */
function textOf(src: { path: string } | { text: string }): string {
  if ("text" in src) return src.text;
  try {
    return readBackupFile(src.path, 1024 * 1024).toString("utf8");
  } catch (err) {
    // a link or special file is the backup's doing; a permission or I/O error is the host's
    if (err instanceof RefusedFile)
      throw new BackupDefectError(`${src.path} ${describeError(err)}`, { cause: err });
    throw new VerifierError(`cannot read ${src.path}: ${describeError(err)}`, { cause: err });
  }
}

/** Brings up a snapshot by crash recovery, or by archive recovery from its backup_label. */
export class SnapshotRestorer implements Restorer {
  readonly name = "snapshot";
  readonly sandboxMode = "empty" as const;
  readonly #opts: SnapshotRestorerOptions;

  constructor(opts: SnapshotRestorerOptions) {
    this.#opts = Object.freeze({ ...opts });
  }

  inputs(_plan: DrillPlan): string[] {
    const o = this.#opts;
    return [o.copyFrom, o.walArchive].filter((p): p is string => Boolean(p));
  }

  async preflight(plan: DrillPlan): Promise<void> {
    const o = this.#opts;
    if (plan.backup.problem) throw new BackupDefectError(`${plan.backup.id}: ${plan.backup.problem}`);
    if (o.copyFrom && !existsSync(posix.join(o.copyFrom, "PG_VERSION"))) {
      throw new BackupDefectError(`${o.copyFrom} is not a data directory (no PG_VERSION)`);
    }
    if (o.backupLabel && "path" in o.backupLabel && !existsSync(o.backupLabel.path)) {
      throw new VerifierError(`backup_label ${o.backupLabel.path} does not exist`);
    }
  }

  async restore(sandbox: Sandbox, ctx: RestoreContext): Promise<RestoreOutcome> {
    const o = this.#opts;
    await this.preflight(ctx.plan);
    const notes: string[] = [];
    const data = sandbox.dataDir;
    if (o.copyFrom) {
      ctx.progress(`copying snapshot ${ctx.plan.backup.id}`);
      const r = await sandboxSh(
        sandbox,
        // -P: links are copied as links, never followed; runRecovery keeps them inside the sandbox
        'mkdir -p -m 700 "$2" && cp -RP --preserve=mode,timestamps -- "$1/." "$2/"',
        [sandbox.inputPath(o.copyFrom), data],
        {
          timeoutMs: Math.max(60_000, ctx.timeoutMs),
          allowFailure: true,
          ...(ctx.signal ? { signal: ctx.signal } : {}),
        },
      );
      if (r.code !== 0)
        throw new VerifierError(
          `could not copy the snapshot into the sandbox: ${r.stderrTail || `cp exited with code ${r.code}`}`,
        );
      notes.push(`copied snapshot ${ctx.plan.backup.id}`);
    }

    let target: RecoveryTarget | undefined;
    let startLsn: string | undefined;
    if (o.backupLabel) {
      const label = textOf(o.backupLabel);
      startLsn = /^START WAL LOCATION:\s*([0-9A-F]+\/[0-9A-F]+)/m.exec(label)?.[1];
      if (!startLsn)
        throw new BackupDefectError("the backup_label kept with the snapshot has no START WAL LOCATION");
      await writeSandboxFile(sandbox, posix.join(data, "backup_label"), label);
      if (o.tablespaceMap)
        await writeSandboxFile(sandbox, posix.join(data, "tablespace_map"), textOf(o.tablespaceMap));
      notes.push(`backup_label placed into the data directory (backup start ${startLsn})`);
      if (o.walArchive) target = ctx.plan.target ?? { kind: "immediate" };
      else notes.push("no WAL archive: replaying only what the snapshot's pg_wal holds");
    } else {
      notes.push("no backup_label: the snapshot is taken as crash-consistent and started by crash recovery");
      if (ctx.plan.target && ctx.plan.target.kind !== "immediate") {
        notes.push(
          `target ${describeTarget(ctx.plan.target)} ignored: a crash-consistent snapshot recovers to the end of its own WAL`,
        );
      }
    }

    const archive = target && o.walArchive ? await readWalArchive(o.walArchive) : undefined;
    const result = await runRecovery(sandbox, ctx, {
      ...(target ? { target } : {}),
      ...(target && o.walArchive ? { archiveDir: sandbox.inputPath(o.walArchive) } : {}),
      superuser: o.superuser,
      ...(o.copyFrom ? { contain: { copiedFrom: o.copyFrom } } : {}),
      ...(startLsn ? { startLsn } : {}),
      ...(archive
        ? {
            explainStop: (facts) =>
              explainStop(archive, facts, {
                ...ctx.plan.backup,
                walRange: {
                  timeline: timelineOf(o.backupLabel ? textOf(o.backupLabel) : ""),
                  startLsn: startLsn!,
                },
              }),
          }
        : {}),
    });
    if (target?.kind === "latest" && archive) checkReachedEnd(archive, result);
    return recoveryOutcome(result, notes);
  }
}

function timelineOf(label: string): number {
  const fromLine = /^START TIMELINE:\s*(\d+)/m.exec(label)?.[1];
  if (fromLine) return Number(fromLine);
  const file = /\(file ([0-9A-F]{24})\)/.exec(label)?.[1];
  return file ? (parseWalFileName(file, 16 << 20)?.tli ?? 1) : 1;
}
