/** The Restorer stage: puts a backup into a sandbox and says what it reached. */
import type { DrillPlan, Reached } from "../model.js";
import type { Sandbox } from "../runtimes/runtime.js";
import type { Logger } from "../util/log.js";

/** What a restorer needs besides the sandbox. */
export interface RestoreContext {
  plan: DrillPlan;
  logger: Logger;
  signal?: AbortSignal;
  /** Time left for the whole restore. */
  timeoutMs: number;
  /** Reports what the restore is doing now (phase, bytes, LSN). */
  progress(text: string): void;
}

/** What a finished restore reached. */
export interface RestoreOutcome {
  /** Databases that now exist in the sandbox and should be checked. */
  databases: string[];
  reached?: Reached;
  /** Part of the restore spent in WAL replay / crash recovery, when separate. */
  recoveryMs?: number;
  /** Facts worth stating in the record ("created 2 roles the dump references"). */
  notes: string[];
}

/** Restores one family of backup. Throws BackupDefectError when the backup is bad. */
export interface Restorer {
  readonly name: string;
  /** Whether the sandbox should be a fresh started cluster or an empty data directory. */
  readonly sandboxMode: "init" | "empty";
  /** Host paths the sandbox must be able to read (the backup, a WAL archive, a globals file). */
  inputs?(plan: DrillPlan): string[];
  /** Checks that need no sandbox (format, hostile content); throws BackupDefectError. */
  preflight?(plan: DrillPlan, signal?: AbortSignal): Promise<void>;
  restore(sandbox: Sandbox, ctx: RestoreContext): Promise<RestoreOutcome>;
}
