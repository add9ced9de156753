/** The Source stage: one adapter per backup family lists what exists, statically. */
import type { Backup, DrillPlan, DrillResource, Finding } from "../model.js";
import type { Restorer } from "../restore/restorer.js";
import type { Logger } from "../util/log.js";

/** What every source adapter receives. */
export interface SourceContext {
  logger: Logger;
  signal?: AbortSignal;
}

/** Phases (ms) and resources of a prepare, filled in as they happen: a failed prepare still has them. */
export interface PrepareRecord {
  phases: Record<string, number>;
  resources: DrillResource[];
}

/** What `prepare` receives. */
export interface PrepareContext extends SourceContext {
  runId: string;
  /** Where to record phases and resources; the drill owns it. */
  record?: PrepareRecord;
}

/** What every prepared backup carries: facts, timings, resources and its release. */
interface PreparedParts extends AsyncDisposable {
  /** Major version read from what was prepared (PG_VERSION), when known. */
  pgMajor?: number;
  /** Facts for the drill record ("data directory found at data/"). */
  notes: string[];
  /** ms of clone, attach, mount (teardown phases are added as they finish). */
  phases: Record<string, number>;
  resources: DrillResource[];
  /** Unmounts, detaches and deletes; safe to call twice; every step runs, the first error wins. */
  dispose(): Promise<{ phases: Record<string, number> }>;
}

/** A backup made reachable as a host data directory (a cloned, attached, mounted volume). */
export interface PreparedDataDir extends PreparedParts {
  /** Host data directory the sandbox runs on; ours to change (a clone, never production). */
  dataDir: string;
}

/** A backup made reachable as host files (fetched, mounted): the sandbox reads them, read-only. */
export interface PreparedFiles extends PreparedParts {
  files: string[];
}

/** What `prepare` made of a backup: a data directory the sandbox runs on, or files it reads. */
export type PreparedBackup = PreparedDataDir | PreparedFiles;

/** What a sweep of leftovers found and removed. */
export interface SourceSweepReport {
  removed: string[];
  kept: string[];
}

/** A configured source of backups. */
export interface Source {
  readonly name: string;
  readonly type: string;
  /** Lists the backups that exist now, newest last. */
  list(ctx: SourceContext): Promise<Backup[]>;
  /** The restorer for one of this source's backups: each source knows how its backups restore. */
  restorer(backup: Backup): Restorer;
  /** Static findings about the inventory (WAL continuity, catalog status); optional. */
  inspect?(backups: readonly Backup[], ctx: SourceContext): Promise<Finding[]>;
  /**
   * Turns one selection rule into drill plans when the source has its own meaning for it
   * (PITR sampling: `random:N@7d` picks target times); undefined = use the generic selection.
   */
  plan?(rule: string, backups: readonly Backup[], now: Date): DrillPlan[] | undefined;
  /**
   * Makes a backup reachable as a host data directory or host files before the sandbox is
   * provisioned (clone a volume backup, attach, mount); the drill disposes it after the sandbox is gone.
   */
  prepare?(plan: DrillPlan, ctx: PrepareContext): Promise<PreparedBackup>;
  /** Removes what runs whose process is gone left behind (clones, attachments, mounts). */
  sweep?(ctx: SourceContext): Promise<SourceSweepReport>;
}
