/** Plain data shared by every stage: backups, drill results, violations, runs. */

/** How a backup was taken. */
export const FAMILIES = ["logical", "physical", "snapshot"] as const;
/** A backup family. */
export type Family = (typeof FAMILIES)[number];

/** Where a backup's `createdAt` came from, strongest first. */
export const CREATED_AT_ORIGINS = ["header", "label", "manifest", "catalog", "api", "name", "mtime"] as const;
/** The origin of a `createdAt`. */
export type CreatedAtOrigin = (typeof CREATED_AT_ORIGINS)[number];

/** One backup as a source sees it, statically (nothing restored). */
export interface Backup {
  /** Name of the configured source. */
  source: string;
  /** Stable id within the source (file name, backup label, OCID). */
  id: string;
  /** Series the backup belongs to (database name for dumps, cluster for physical). */
  series: string;
  family: Family;
  /** custom | directory | tar | plain | plain-gzip | base-plain | base-tar | … */
  format: string;
  /** ISO time the backup is consistent as of. */
  createdAt: string;
  createdAtOrigin: CreatedAtOrigin;
  sizeBytes: number;
  /** Major version of the server the backup was taken from, when known. */
  pgMajor?: number;
  /** Path or URI of the backup. */
  location: string;
  /** Where the backup lives when a configured store (`storage:`) holds it: store name, key, ETag. */
  stored?: { storage: string; key: string; etag?: string };
  walRange?: { timeline: number; startLsn: string; stopLsn?: string; startWal?: string; stopWal?: string };
  manifest?: string;
  labels: Record<string, string>;
}

/** A static finding about a source's inventory (not a policy decision). */
export interface Finding {
  source: string;
  series?: string;
  backupId?: string;
  kind: string;
  severity: Severity;
  message: string;
}

/** Where recovery should stop. */
export type RecoveryTarget =
  | { kind: "immediate" }
  | { kind: "latest" }
  | { kind: "time"; time: string }
  | {
      kind: "lsn";
      lsn: string;
      /** The timeline to follow to the LSN (recovery_target_timeline); the newest when absent. */
      timeline?: number;
      /** The backup whose start this LSN is (`select: all` replays each backup to the next one's start). */
      nextBackup?: string;
    };

/** A backup chosen for a drill, and why. */
export interface DrillPlan {
  backup: Backup;
  target?: RecoveryTarget;
  /** The selection rule that picked it (`latest`, `random:2@30d`, an id). */
  reason: string;
}

/** Outcome of one check. */
export const CHECK_STATUSES = ["pass", "warn", "fail", "skip", "error"] as const;
/** A check's status. */
export type CheckStatus = (typeof CHECK_STATUSES)[number];

/** A check's result record; a failed check is data, never an exception. */
export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  durationMs?: number;
  evidence?: unknown;
}

/** Verdict of a drill or a run. */
export const VERDICTS = ["pass", "warn", "fail", "error"] as const;
/** A verdict: `fail` = the backup is bad; `error` = Attest could not verify. */
export type Verdict = (typeof VERDICTS)[number];

/** Phase timings of a drill, in milliseconds. */
export interface Timings {
  provisionMs: number;
  restoreMs: number;
  recoveryMs: number;
  checksMs: number;
  teardownMs: number;
  totalMs: number;
}

/** A drill's timings: the phases every record has, plus the preflight (before any sandbox exists). */
export interface DrillTimings extends Timings {
  /** Checks before provisioning (a plain dump's hostile-content scan); absent in older records. */
  preflightMs?: number;
}

/** What a restore reached. */
export interface Reached {
  lsn?: string;
  timestamp?: string;
  /** The timeline replay ended on: the one `lsn` lies on, delivered by the backup and its archive. */
  timeline?: number;
  /** The timeline the restored server runs on after promotion (pg_control), the sandbox's own. */
  promotedTimeline?: number;
}

/** Objects and row counts found in a restored copy. */
export interface Inventory {
  databases: Array<{
    name: string;
    schemas: string[];
    /**
     * Tables with their own rows (counted with ONLY). `kind` marks a partitioned parent (no
     * rows of its own) or an inheritance parent; absent for a plain table.
     */
    tables: Array<{ name: string; rows: number; kind?: "partitioned" | "parent" }>;
    indexes: number;
    sequences: number;
    views: number;
    /** Materialized views (not tables; their row counts are not compared). */
    matviews?: string[];
    extensions: string[];
  }>;
  roles: string[];
}

/** The record of one drill. */
export interface DrillResult {
  source: string;
  series: string;
  backup: Pick<Backup, "id" | "family" | "format" | "createdAt" | "sizeBytes" | "location"> & {
    pgMajor?: number;
  };
  runtime: string;
  sandboxMajor?: number;
  /** How the sandbox's processes were confined, in words (a `none` opt-out says so). */
  confinement?: string;
  target?: RecoveryTarget;
  verdict: Verdict;
  reason: string;
  /** The closed reason code the verdict follows from (DRILL_OUTCOMES in src/audit/drill-outcome.ts). */
  outcome?: string;
  timings: DrillTimings;
  reached?: Reached;
  checks: CheckResult[];
  /** Newest data timestamp found in the restored copy (freshness query). */
  newestData?: string;
  /** Seconds between the newest restored data and the drill start: the measured RPO. */
  measuredRpoSeconds?: number;
  notes: string[];
  /** Path of the evidence JSON (inventory, check details), relative to the reports dir. */
  evidence?: string;
  /** Sub-phases of preparing and releasing the backup (clone, attach, mount, unmount, detach, delete), in ms. */
  phases?: Record<string, number>;
  /** What the drill created outside the sandbox (cloud volumes, attachments, mounts), and whether it is gone. */
  resources?: DrillResource[];
}

/** A resource a drill created to reach its backup (a cloned volume, an attachment, a mount). */
export interface DrillResource {
  kind: string;
  id: string;
  created: boolean;
  deleted: boolean;
}

/** Severity of a violation or finding. */
export const SEVERITIES = ["warning", "critical"] as const;
/** A severity. */
export type Severity = (typeof SEVERITIES)[number];

/** A policy violation. */
export interface Violation {
  source: string;
  series?: string;
  rule: string;
  severity: Severity;
  message: string;
  evidence?: Record<string, unknown>;
  /** ISO time since when the condition holds, when known. */
  since?: string;
}

/** The kinds of run. */
export const RUN_KINDS = ["audit", "drill", "check", "report"] as const;
/** A run kind. */
export type RunKind = (typeof RUN_KINDS)[number];

/** One run's document: what `--json` prints. */
export interface RunResult {
  run: { id: string; kind: RunKind; startedAt: string; finishedAt: string; label?: string };
  status: Verdict;
  drills: DrillResult[];
  violations: Violation[];
  findings?: Finding[];
  delivery?: Array<{ channel: string; ok: boolean; detail: string }>;
}
