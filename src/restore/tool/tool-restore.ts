/**
 * The one sequence every tool-driven restore follows (pgbackrest restore, barman-cloud-restore,
 * barman recover): refuse a backup its source found unusable, let the tool write the empty data
 * directory (run confined as a process of the sandbox), move what it wrote beside the data
 * directory into it, then archive recovery with the tool's restore_command, the check that
 * replay reached the archive's end, and the record's notes. A tool restorer is its parameters.
 */
import { posix } from "node:path";
import type { Backup, Reached, RecoveryTarget } from "../../model.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { BackupDefectError, VerifierError } from "../../util/errors.js";
import { lastLines } from "../../util/process.js";
import { describeTarget } from "../physical/recovery-config.js";
import type { RecoveryLogFacts } from "../physical/recovery-log.js";
import { recoveryOutcome, runRecovery } from "../physical/recovery-run.js";
import { sandboxSh } from "../physical/sandbox-shell.js";
import type { RestoreContext, RestoreOutcome } from "../restorer.js";
import { withRestoreCommand } from "./restore-command.js";

/** A backup its source found unusable statically fails before anything runs. */
export function rejectProblem(b: Backup): void {
  if (b.problem) throw new BackupDefectError(`${b.id}: ${b.problem}`);
}

/** The tools run on this host next to the sandbox: other runtimes are refused. */
export function requireLocal(sandbox: Sandbox, tool: string): void {
  if (sandbox.runtime !== "local") throw new VerifierError(`${tool} restores need sandbox.runtime: local`);
}

/** How the tool that writes the data directory runs, and what its failure means. */
export interface ToolRun {
  /** Program and arguments as the sandbox executes them (a store forwarder first, when one is used). */
  program: string;
  args: string[];
  /** Progress line while it runs. */
  progress: string;
  /** How many lines of its output name a failure. */
  tailLines: number;
  /** The error a failed or timed-out run becomes (`fail` when the backup is at fault, else `error`). */
  failure(tail: string, timedOut: boolean): Error;
  /** The record's note once it wrote the data directory in `ms`. */
  done(ms: number): string;
  /** A directory the tool wrote the tablespaces into (beside the data directory), moved into it next. */
  tablespaces?: {
    from: string;
    /** Name of its place inside the data directory. */
    to: string;
    /** Whether it must exist (the backup has tablespaces) rather than only may. */
    required: boolean;
    note: string;
  };
}

/** How archive recovery gets its WAL and proves it reached the archive's end. */
export interface ToolRecovery {
  target: RecoveryTarget;
  /** Superuser of the backed-up cluster (to connect before the sandbox's own login exists). */
  superuser: string;
  /** The tool's restore_command (PostgreSQL's %f/%p in it), appended before the server starts. */
  restoreCommand?: { command: string; why: string };
  /** The archive directory recovery is prepared with (a tool's restore_command replaces its copy). */
  archiveDir: string;
  /** Directories whose content now lies in the data directory (links naming them are pointed there). */
  moved?: Array<{ from: string; to: string }>;
  explainStop?: (facts: RecoveryLogFacts) => string | undefined;
  /** The record's note on where WAL came from. */
  note?: string;
  /** For target `latest`: throws when replay ended before the archive's newest segment. */
  checkEnd?: (sandbox: Sandbox, reached: Reached) => void | Promise<void>;
  /**
   * Closes what only the restore_command needed (the store relay, keys): run as soon as the
   * server left recovery, before Attest's first query to it, which a hostile catalog could
   * turn into the backup's code (S3-1).
   */
  closeStore?: () => Promise<void>;
}

/** Runs the tool into the empty data directory; returns the record's notes. */
export async function runTool(sandbox: Sandbox, ctx: RestoreContext, run: ToolRun): Promise<string[]> {
  ctx.progress(run.progress);
  const started = Date.now();
  const r = await sandbox.exec(run.program, run.args, {
    timeoutMs: Math.max(10_000, ctx.timeoutMs - 60_000),
    allowFailure: true,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    env: { LANG: "C.UTF-8" },
  });
  if (r.code !== 0 || r.timedOut) {
    const tail = lastLines(`${r.stderrTail}\n${r.stdout}`, run.tailLines) || `exit code ${r.code}`;
    throw run.failure(tail, Boolean(r.timedOut));
  }
  const notes = [run.done(Date.now() - started)];
  const ts = run.tablespaces;
  if (ts) {
    const moved = await sandboxSh(
      sandbox,
      `${ts.required ? "" : '[ -d "$1" ] || exit 0; '}mv -- "$1" "$2" && echo moved`,
      [ts.from, posix.join(sandbox.dataDir, ts.to)],
    );
    if (moved.stdout.includes("moved")) notes.push(ts.note);
  }
  return notes;
}

/** Archive recovery of the data directory the tool wrote, to the outcome the drill records. */
export async function recoverWithTool(
  sandbox: Sandbox,
  ctx: RestoreContext,
  notes: readonly string[],
  rec: ToolRecovery,
): Promise<RestoreOutcome> {
  const { backup } = ctx.plan;
  ctx.progress(`recovering to ${describeTarget(rec.target)}`);
  const server = rec.restoreCommand
    ? withRestoreCommand(sandbox, rec.restoreCommand.command, rec.restoreCommand.why)
    : sandbox;
  const result = await runRecovery(server, ctx, {
    target: rec.target,
    archiveDir: rec.archiveDir,
    superuser: rec.superuser,
    ...(backup.walRange ? { startLsn: backup.walRange.startLsn } : {}),
    ...(rec.moved ? { contain: { moved: rec.moved } } : {}),
    ...(rec.explainStop ? { explainStop: rec.explainStop } : {}),
    ...(rec.closeStore ? { onRecovered: rec.closeStore } : {}),
  });
  if (rec.target.kind === "latest") await rec.checkEnd?.(sandbox, result.reached);
  return recoveryOutcome(result, [...notes, ...(rec.note ? [rec.note] : [])]);
}

/** The whole sequence for a tool that runs inside the sandbox: the tool, then recovery. */
export async function restoreWithTool(
  sandbox: Sandbox,
  ctx: RestoreContext,
  notes: readonly string[],
  run: ToolRun,
  rec: ToolRecovery,
): Promise<RestoreOutcome> {
  const written = await runTool(sandbox, ctx, run);
  return recoverWithTool(sandbox, ctx, [...notes, ...written], rec);
}
