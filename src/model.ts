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
  /** The WAL archive a physical backup recovers through, when its source has one (the PITR planner reads it). */
  walArchive?: WalArchiveFacts;
  manifest?: string;
  /** Why the backup is unusable, found statically (any family): a drill fails on it without restoring. */
  problem?: string;
  /** Typed facts the source found for the stages after it (restorer, planner, drill), by kind. */
  detail?: BackupDetail;
  /** Free-form facts for people (`attest list`, its JSON); no stage reads them. */
  labels: Record<string, string>;
}

/** Where a backup's WAL archive is and how far it reaches. */
export interface WalArchiveFacts {
  /** Host path, or where the archive lives (`pgbackrest:<stanza>`, a bucket prefix). */
  location: string;
  /** The newest recoverable moment of the archive (ISO), and where that came from. */
  end?: { time: string; from: string };
}

/** How a base backup's files lie in its directory (what the physical restorer extracts). */
export type BaseBackupLayout =
  | { kind: "plain" }
  | {
      kind: "tar";
      /** The data directory's tar (base.tar, base.tar.gz, …), relative to the backup. */
      base: string;
      compression?: "gz" | "lz4" | "zst";
      /** pg_wal.tar(.gz) when the backup carries its WAL apart. */
      walTar?: string;
      /** One tar per tablespace, named `<oid>.tar…`. */
      tablespaces: string[];
    }
  | {
      kind: "snapshot";
      /** The data directory inside the backup directory. */
      dataDir: string;
      /** A backup_label kept beside the snapshot (archive recovery starts from it). */
      labelFile?: string;
      tablespaceMap?: string;
    };

/** Whether a base backup carries the WAL it needs to reach consistency. */
export type WalIncluded = "yes" | "no" | "unknown";

/** Facts of a base backup or data directory snapshot (`basebackup` source). */
export interface BaseBackupDetail {
  kind: "basebackup";
  layout: BaseBackupLayout;
  /** Bytes per WAL segment. */
  walSegmentSize: number;
  walIncluded: WalIncluded;
}

/** Facts of a pg_dump / pg_dumpall file (`dump-dir` source). */
export interface DumpDetail {
  kind: "dump";
  /** A database's dump, or a whole cluster's (pg_dumpall). */
  scope: "database" | "cluster";
  /** Major version of the pg_dump that wrote it (the sandbox needs at least this one). */
  dumpMajor?: number;
  /** A plain dump that runs CREATE [OR REPLACE] PROCEDURAL LANGUAGE plpgsql (old pg_dump output). */
  createsPlpgsql?: boolean;
  /** A pg_dumpall file that carries databases (not only globals). */
  clusterDatabases?: boolean;
  /** Schema or data alone (absent: both). */
  content?: "schema-only" | "data-only";
  /** How the series was named, when not from the dump's own database name. */
  seriesFrom?: string;
  /** The schema dump a data-only dump is paired with, restored first. */
  schema?: { id: string; location: string; format: string };
}

/** Facts of a backup in a pgBackRest repository. */
export interface PgbackrestDetail {
  kind: "pgbackrest";
  /** The newest WAL segment the archive holds for the backup's database. */
  archiveMax?: string;
}

/** Facts of a backup in a Barman catalog or a barman-cloud bucket. */
export interface BarmanDetail {
  kind: "barman" | "barman-cloud";
  /** The newest WAL segment of the backup's timeline in the archive. */
  walLast?: string;
  /** Bytes per WAL segment, when the catalog says. */
  walSegmentSize?: number;
  /** Tablespaces the backup holds, as its catalog writes them (the restorer refuses an OID that is not digits). */
  tablespaces?: Array<{ name: string; oid: string }>;
}

/** Facts of an OCI block volume backup. */
export interface VolumeBackupDetail {
  kind: "oci-volume";
  displayName?: string;
  /** FULL | INCREMENTAL. */
  type?: string;
  sizeGb?: number;
  /** The backup's defined tags (namespace → key → value). */
  definedTags?: Record<string, Record<string, unknown>>;
  /** Kept backup_label for this backup (archive recovery starts from it). */
  labelFile?: string;
}

/** The typed facts of a backup, by its source's kind. */
export type BackupDetail =
  | BaseBackupDetail
  | DumpDetail
  | PgbackrestDetail
  | BarmanDetail
  | VolumeBackupDetail;

/** The backup's detail when its source wrote one of `kind`; undefined otherwise. */
export function detailOf<K extends BackupDetail["kind"]>(
  backup: Pick<Backup, "detail">,
  kind: K,
): (BackupDetail & { kind: K }) | undefined {
  const d = backup.detail;
  return d?.kind === kind ? (d as BackupDetail & { kind: K }) : undefined;
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
