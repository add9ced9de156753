/**
 * The text files that describe a base backup: backup_label (in the backup), the backup
 * history file (in the WAL archive, with STOP fields) and backup_manifest (JSON).
 */
import { describeError } from "../../util/errors.js";
import { parseLsn } from "../../wal/wal-names.js";

/** What a backup_label or backup history file says. */
export interface BackupLabel {
  startLsn: string;
  /** Segment file name printed beside the start position. */
  startWal?: string;
  checkpointLsn?: string;
  method?: string;
  from?: string;
  /** START TIME as an ISO string (zone resolved) and as written. */
  startTime?: string;
  startTimeText?: string;
  label?: string;
  timeline: number;
  stopLsn?: string;
  stopWal?: string;
  stopTime?: string;
  stopTimeText?: string;
  stopTimeline?: number;
  /** Notes about what could not be read exactly (an unknown zone abbreviation). */
  notes: string[];
}

/** Offsets of zone abbreviations PostgreSQL commonly prints (%Z of log_timezone), in minutes. */
const ZONES: Record<string, number> = {
  UTC: 0,
  GMT: 0,
  Z: 0,
  UT: 0,
  WET: 0,
  WEST: 60,
  BST: 60,
  CET: 60,
  CEST: 120,
  MET: 60,
  MEST: 120,
  EET: 120,
  EEST: 180,
  MSK: 180,
  IST: 330,
  SGT: 480,
  HKT: 480,
  JST: 540,
  KST: 540,
  AEST: 600,
  AEDT: 660,
  NZST: 720,
  NZDT: 780,
  EST: -300,
  EDT: -240,
  CST: -360,
  CDT: -300,
  MST: -420,
  MDT: -360,
  PST: -480,
  PDT: -420,
  AKST: -540,
  AKDT: -480,
  HST: -600,
};

/** Parses `2026-11-20 03:00:05 UTC` (or a numeric zone such as `+03`, `-0530`). */
export function parseLabelTime(text: string): { iso?: string; note?: string } {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\s+(\S+))?$/.exec(text.trim());
  if (!m) return { note: `unreadable time "${text}"` };
  const zone = m[3] ?? "UTC";
  let offsetMin: number | undefined = ZONES[zone.toUpperCase()];
  const num = /^([+-])(\d\d):?(\d\d)?$/.exec(zone);
  if (num) offsetMin = (num[1] === "-" ? -1 : 1) * (Number(num[2]) * 60 + Number(num[3] ?? 0));
  const utc = Date.parse(`${m[1]}T${m[2]}Z`);
  if (Number.isNaN(utc)) return { note: `unreadable time "${text}"` };
  if (offsetMin === undefined) {
    return {
      iso: new Date(utc).toISOString(),
      note: `time zone "${zone}" of "${text}" is unknown; read as UTC`,
    };
  }
  return { iso: new Date(utc - offsetMin * 60_000).toISOString() };
}

/** The parsed label, or undefined with the reason added to `problems`. */
export function labelOrProblem(text: string, problems: string[]): BackupLabel | undefined {
  try {
    return parseBackupLabel(text);
  } catch (err) {
    problems.push(`backup_label: ${describeError(err)}`);
    return undefined;
  }
}

/** Parses backup_label or backup history file text; throws when it has no start position. */
export function parseBackupLabel(text: string): BackupLabel {
  const field = (k: string) => new RegExp(`^${k}:\\s*(.*?)\\s*$`, "m").exec(text)?.[1];
  const lsnOf = (v: string | undefined) => {
    const m = v ? /^([0-9A-Fa-f]+\/[0-9A-Fa-f]+)(?:\s+\(file ([0-9A-F]{24})\))?/.exec(v) : null;
    if (!m) return undefined;
    parseLsn(m[1]!);
    return { lsn: m[1]!.toUpperCase(), file: m[2] };
  };
  const start = lsnOf(field("START WAL LOCATION"));
  if (!start) throw new Error("no START WAL LOCATION line: not a backup_label");
  const notes: string[] = [];
  const out: BackupLabel = { startLsn: start.lsn, timeline: Number(field("START TIMELINE") ?? 1), notes };
  if (start.file) out.startWal = start.file;
  const ckpt = lsnOf(field("CHECKPOINT LOCATION"));
  if (ckpt) out.checkpointLsn = ckpt.lsn;
  const set = <K extends keyof BackupLabel>(k: K, v: BackupLabel[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set("method", field("BACKUP METHOD"));
  set("from", field("BACKUP FROM"));
  set("label", field("LABEL"));
  const startTime = field("START TIME");
  if (startTime) {
    const t = parseLabelTime(startTime);
    set("startTime", t.iso);
    out.startTimeText = startTime;
    if (t.note) notes.push(t.note);
  }
  const stop = lsnOf(field("STOP WAL LOCATION"));
  if (stop) {
    out.stopLsn = stop.lsn;
    if (stop.file) out.stopWal = stop.file;
  }
  const stopTime = field("STOP TIME");
  if (stopTime) {
    const t = parseLabelTime(stopTime);
    set("stopTime", t.iso);
    out.stopTimeText = stopTime;
    if (t.note) notes.push(t.note);
  }
  const stopTl = field("STOP TIMELINE");
  if (stopTl) out.stopTimeline = Number(stopTl);
  return out;
}

/** The parts of a backup_manifest this source uses. */
export interface ManifestSummary {
  version: number;
  files: number;
  /** Sum of the sizes of the files listed (the data directory's size). */
  dataBytes: number;
  walRanges: Array<{ timeline: number; startLsn: string; endLsn: string }>;
  checksumAlgorithm?: string;
  /** Modification time the manifest records for backup_label (GMT), as ISO. */
  labelModified?: string;
  systemIdentifier?: string;
}

/** Parses backup_manifest JSON; throws with a short reason when it is not one. */
export function parseManifest(text: string): ManifestSummary {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`backup_manifest is not valid JSON (${(err as Error).message})`);
  }
  const d = doc as Record<string, unknown>;
  const version = Number(d["PostgreSQL-Backup-Manifest-Version"]);
  if (!Number.isFinite(version) || !Array.isArray(d.Files))
    throw new Error("backup_manifest lacks its version or file list");
  let dataBytes = 0;
  let checksumAlgorithm: string | undefined;
  let labelModified: string | undefined;
  for (const f of d.Files as Array<Record<string, unknown>>) {
    dataBytes += Number(f.Size ?? 0);
    if (!checksumAlgorithm && typeof f["Checksum-Algorithm"] === "string")
      checksumAlgorithm = f["Checksum-Algorithm"];
    if (f.Path === "backup_label" && typeof f["Last-Modified"] === "string") {
      const t = Date.parse(f["Last-Modified"].replace(" GMT", "Z").replace(" ", "T"));
      if (!Number.isNaN(t)) labelModified = new Date(t).toISOString();
    }
  }
  const walRanges = Array.isArray(d["WAL-Ranges"])
    ? (d["WAL-Ranges"] as Array<Record<string, unknown>>).map((r) => ({
        timeline: Number(r.Timeline),
        startLsn: String(r["Start-LSN"]),
        endLsn: String(r["End-LSN"]),
      }))
    : [];
  const sysid = /"System-Identifier"\s*:\s*(\d+)/.exec(text)?.[1];
  return {
    version,
    files: (d.Files as unknown[]).length,
    dataBytes,
    walRanges,
    ...(checksumAlgorithm ? { checksumAlgorithm } : {}),
    ...(labelModified ? { labelModified } : {}),
    // a 64-bit integer: JSON.parse would round it, so it is read from the text
    ...(sysid ? { systemIdentifier: sysid } : {}),
  };
}
