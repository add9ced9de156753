/**
 * barman-cloud's `backup.info` (one per backup, `<path>/<server>/base/<id>/backup.info`): Barman's
 * BackupInfo written as `key=value` lines, values in Python's notation (None, quoted strings, dicts).
 * Read directly rather than through `barman-cloud-backup-list --format json`, whose JSON prints
 * begin/end times without their UTC offset; the file keeps it ("2026-12-04 22:04:49.381+00:00").
 */

/** The fields of a backup.info that Attest reads. */
export interface BarmanCloudBackupInfo {
  backupId: string;
  /** The `backup_id` line, when the file has one (it must equal the directory's name). */
  declaredId?: string;
  /** DONE, FAILED, STARTED, WAITING_FOR_WALS, … */
  status: string;
  error?: string;
  beginTime?: string;
  endTime?: string;
  beginWal?: string;
  endWal?: string;
  beginXlog?: string;
  endXlog?: string;
  timeline?: number;
  /** server_version_num (150018). */
  version?: number;
  systemId?: string;
  walSegmentSize?: number;
  /** Bytes Barman recorded (None for cloud backups, which record no size). */
  size?: number;
  /** The data tar's compression (gzip, bzip2, snappy) or undefined. */
  compression?: string;
  /** Tablespaces as `name:oid` pairs, when any. */
  tablespaces: Array<{ name: string; oid: string }>;
}

/** Parses a backup.info's text; `backupId` comes from its key (the file does not name itself). */
export function parseBackupInfo(text: string, backupId: string): BarmanCloudBackupInfo {
  const raw = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    raw.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  const value = (k: string): string | undefined => {
    const v = raw.get(k);
    if (v === undefined || v === "None" || v === "") return undefined;
    // a Python string literal of a quoted value: strip the quotes, keep its content
    const q = /^'(.*)'$/s.exec(v) ?? /^"(.*)"$/s.exec(v);
    return q ? q[1] : v;
  };
  const num = (k: string): number | undefined => {
    const v = value(k);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const time = (k: string): string | undefined => {
    const v = value(k);
    if (!v) return undefined;
    // "2026-12-04 22:04:49.381002+00:00": Python's isoformat with a space
    const t = Date.parse(v.replace(" ", "T").replace(/(\.\d{3})\d+/, "$1"));
    return Number.isFinite(t) ? new Date(t).toISOString() : undefined;
  };
  const info: BarmanCloudBackupInfo = {
    backupId,
    status: value("status") ?? "UNKNOWN",
    tablespaces: parseTablespaces(raw.get("tablespaces")),
  };
  const set = <K extends keyof BarmanCloudBackupInfo>(k: K, v: BarmanCloudBackupInfo[K] | undefined) => {
    if (v !== undefined) info[k] = v;
  };
  set("declaredId", value("backup_id"));
  set("error", value("error"));
  set("beginTime", time("begin_time"));
  set("endTime", time("end_time"));
  set("beginWal", value("begin_wal"));
  set("endWal", value("end_wal"));
  set("beginXlog", value("begin_xlog"));
  set("endXlog", value("end_xlog"));
  set("timeline", num("timeline"));
  set("version", num("version"));
  set("systemId", value("systemid"));
  set("walSegmentSize", num("xlog_segment_size"));
  set("size", num("size"));
  set("compression", value("compression"));
  return info;
}

/**
 * Tablespaces of a backup.info: Barman writes the repr of a list of (name, oid, location)
 * tuples, or None. A name with a single quote is repr-ed between double quotes.
 */
function parseTablespaces(v: string | undefined): Array<{ name: string; oid: string }> {
  if (!v || v === "None") return [];
  const out: Array<{ name: string; oid: string }> = [];
  for (const m of v.matchAll(/\(\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*,\s*(\d+)\s*,/g))
    out.push({ name: (m[1] ?? m[2])!, oid: m[3]! });
  return out;
}
