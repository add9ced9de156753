/** Barman's catalog as its JSON output and its files describe it: servers, backups, xlog.db. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Backup, BarmanDetail } from "../../model.js";
import type { BarmanSourceConfig } from "./barman-config.js";

/** One entry of `barman -f json list-backups SERVER`. */
export interface BarmanListEntry {
  backup_id: string;
  status: string;
  size_bytes?: number;
  wal_size_bytes?: number;
  end_time?: string;
  /** Seconds since the epoch, as a string. */
  end_time_timestamp?: string;
}

/** The part of `barman -f json show-backup SERVER ID` Attest reads. */
export interface BarmanShowBackup {
  backup_id: string;
  status: string;
  postgresql_version?: number;
  pgdata_directory?: string;
  base_backup_information?: {
    disk_usage_bytes?: number;
    timeline?: number;
    begin_wal?: string;
    end_wal?: string;
    begin_time?: string;
    end_time?: string;
    begin_lsn?: string;
    end_lsn?: string;
  };
  wal_information?: { last_available?: string };
  error?: string;
}

/** The settings of `barman -f json show-servers SERVER` Attest reads. */
export interface BarmanServerSettings {
  backup_method?: string;
  basebackups_directory?: string;
  wals_directory?: string;
  barman_home?: string;
}

/** A Python `isoformat(sep=" ")` time ("2026-11-21 20:47:00.123456+00:00") as ISO 8601 UTC. */
export function barmanTime(text: string): string | undefined {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$/.exec(text.trim());
  if (!m) return undefined;
  const ms = (m[3] ?? "").padEnd(3, "0").slice(0, 3);
  const d = new Date(`${m[1]}T${m[2]}.${ms}${m[4] ?? "Z"}`);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** Key=value lines of a Barman backup.info. */
export function readBackupInfo(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  try {
    for (const line of readFileSync(join(dir, "backup.info"), "utf8").split("\n")) {
      const i = line.indexOf("=");
      if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
    }
  } catch {
    // unreadable: show-servers and show-backup still say enough
  }
  return out;
}

/** The Backup record of one DONE backup. */
export function backupRecord(
  cfg: BarmanSourceConfig,
  entry: BarmanListEntry,
  show: BarmanShowBackup,
  server: BarmanServerSettings,
): Backup {
  const info = show.base_backup_information ?? {};
  const dir = server.basebackups_directory ? join(server.basebackups_directory, entry.backup_id) : "";
  const fileInfo = dir ? readBackupInfo(dir) : {};
  const method = fileInfo.backup_method ?? server.backup_method ?? "unknown";
  const end = info.end_time ? barmanTime(info.end_time) : undefined;
  const version = show.postgresql_version;
  const pgMajor = version
    ? version >= 100000
      ? Math.floor(version / 10000)
      : Math.floor(version / 10000) + (Math.floor(version / 100) % 100) / 10
    : undefined;
  const labels: Record<string, string> = {
    barmanServer: cfg.server,
    barmanConfig: cfg.config_file,
    backupMethod: method,
    createdAtFrom: end
      ? "end_time in Barman's catalog (show-backup)"
      : "end_time_timestamp in Barman's catalog (list-backups; seconds)",
  };
  if (info.begin_time) labels.startTime = barmanTime(info.begin_time) ?? info.begin_time;
  if (fileInfo.systemid) labels.systemIdentifier = fileInfo.systemid;
  const segSize = Number(fileInfo.xlog_segment_size);
  const detail: BarmanDetail = {
    kind: "barman",
    ...(show.wal_information?.last_available ? { walLast: show.wal_information.last_available } : {}),
    ...(segSize > 0 ? { walSegmentSize: segSize } : {}),
  };
  if (server.wals_directory) labels.walsDirectory = server.wals_directory;
  if (show.pgdata_directory) labels.pgdata = show.pgdata_directory;
  if (entry.wal_size_bytes !== undefined) labels.walSizeBytes = String(entry.wal_size_bytes);
  const listEnd = entry.end_time_timestamp;
  const createdAt =
    end ?? (listEnd ? new Date(Number(listEnd) * 1000).toISOString() : new Date(0).toISOString());
  return {
    source: cfg.name,
    id: entry.backup_id,
    series: cfg.server,
    family: "physical",
    format: `barman-${method}`,
    createdAt,
    createdAtOrigin: "catalog",
    sizeBytes: entry.size_bytes ?? info.disk_usage_bytes ?? 0,
    ...(pgMajor !== undefined ? { pgMajor } : {}),
    location: dir || `barman:${cfg.server}/${entry.backup_id}`,
    ...(info.begin_lsn && info.timeline
      ? {
          walRange: {
            timeline: info.timeline,
            startLsn: info.begin_lsn,
            ...(info.end_lsn ? { stopLsn: info.end_lsn } : {}),
            ...(info.begin_wal ? { startWal: info.begin_wal } : {}),
            ...(info.end_wal ? { stopWal: info.end_wal } : {}),
          },
        }
      : {}),
    detail,
    labels,
  };
}

/** WAL names in xlog.db whose files are gone from the wals directory. */
export function missingWals(walsDir: string): { missing: string[]; total: number } {
  let text: string;
  try {
    text = readFileSync(join(walsDir, "xlog.db"), "utf8");
  } catch {
    return { missing: [], total: 0 };
  }
  const missing: string[] = [];
  let total = 0;
  for (const line of text.split("\n")) {
    const name = line.split("\t")[0]?.trim();
    if (!name || !/^[0-9A-F]{24}$/.test(name)) continue;
    total++;
    if (!existsSync(join(walsDir, name.slice(0, 16), name))) missing.push(name);
  }
  return { missing, total };
}
