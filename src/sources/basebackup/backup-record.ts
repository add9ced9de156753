/** The Backup record of one base backup directory: positions, times, major, series, facts, labels. */
import { gunzipSync } from "node:zlib";
import type { Backup, BaseBackupDetail } from "../../model.js";
import { readBackupFile } from "../../util/backup-file.js";
import type { WalArchive } from "../../wal/wal-archive.js";
import { readWalSegmentHeader, type WalSegmentHeader } from "../../wal/wal-header.js";
import { DEFAULT_WAL_SEGMENT_SIZE, parseLsn, segmentName, segmentOfLsn } from "../../wal/wal-names.js";
import { type BackupLabel, parseBackupLabel } from "./backup-label.js";
import type { BasebackupSourceConfig } from "./basebackup-config.js";
import type { DescribedBackup } from "./describe-backup.js";

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, "0");

/** How backupRecord reads archive files that are not host files (a stored archive). */
export interface BackupRecordReads {
  /** The backup history file `name` of the archive, parsed; undefined when absent. */
  readHistory?(name: string): Promise<BackupLabel | undefined>;
}

/** Builds the Backup record of one described directory of source `cfg`. */
export async function backupRecord(
  cfg: BasebackupSourceConfig,
  d: DescribedBackup,
  archive: WalArchive | undefined,
  reads: BackupRecordReads = {},
): Promise<Backup> {
  const segSize = archive?.index.segSize ?? cfg.wal_segment_size ?? DEFAULT_WAL_SEGMENT_SIZE;
  const detail: BaseBackupDetail = {
    kind: "basebackup",
    layout: d.layout,
    walSegmentSize: segSize,
    walIncluded: d.walIncluded,
  };
  const labels: Record<string, string> = {};
  const problems = [...d.problems];
  const l = d.label;
  let history: BackupLabel | undefined;
  let startHeader: WalSegmentHeader | undefined;
  if (l) {
    labels.startTime = l.startTime ?? l.startTimeText ?? "";
    if (l.label) labels.backupLabel = l.label;
    if (l.checkpointLsn) labels.checkpointLsn = l.checkpointLsn;
    if (l.from) labels.backupFrom = l.from;
    if (l.notes.length) labels.labelNotes = l.notes.join("; ");
    if (archive) {
      const lsn = parseLsn(l.startLsn);
      const seg = segmentOfLsn(lsn, segSize);
      const historyName = `${segmentName(l.timeline, seg, segSize)}.${hex8(Number(lsn % BigInt(segSize)))}.backup`;
      history = reads.readHistory ? await reads.readHistory(historyName) : readHistory(archive, historyName);
      if (history) labels.historyFile = historyName;
      const segFile = archive.index.files.get(l.timeline)?.get(seg);
      if (segFile)
        startHeader = await readWalSegmentHeader(archive.path(segFile), compressionOf(segFile)).catch(
          () => undefined,
        );
    }
  } else if (d.layout.kind !== "snapshot") {
    problems.push("no readable backup_label");
  }

  const stopLsn = d.manifest?.summary.walRanges.at(-1)?.endLsn ?? history?.stopLsn;
  let createdAt: Date;
  let origin: Backup["createdAtOrigin"];
  if (history?.stopTime) {
    createdAt = new Date(history.stopTime);
    origin = "label";
    labels.createdAtFrom = `STOP TIME in the backup history file ${labels.historyFile}`;
    labels.stopTime = history.stopTime;
  } else if (d.manifest) {
    createdAt = d.manifest.mtime;
    origin = "mtime";
    labels.createdAtFrom =
      "modification time of backup_manifest (written when the backup ended; no backup history file)";
  } else if (l?.startTime) {
    createdAt = new Date(l.startTime);
    origin = "label";
    labels.createdAtFrom =
      "START TIME in backup_label (the stop time is unknown: no backup history file, no manifest)";
  } else {
    createdAt = d.mtime;
    origin = "mtime";
    labels.createdAtFrom =
      d.layout.kind === "snapshot"
        ? "modification time of the snapshot directory"
        : "modification time of the backup directory";
  }

  const pgMajor = d.pgMajor ?? startHeader?.pgMajor ?? archive?.header?.pgMajor;
  const sysid = d.systemIdentifier ?? startHeader?.systemIdentifier ?? archive?.header?.systemIdentifier;
  if (sysid) labels.systemIdentifier = sysid;
  if (d.manifest) {
    labels.manifestFiles = String(d.manifest.summary.files);
    labels.dataBytes = String(d.manifest.summary.dataBytes);
  }
  const walRange: Backup["walRange"] = l
    ? {
        timeline: l.timeline,
        startLsn: l.startLsn,
        startWal: segmentName(l.timeline, segmentOfLsn(parseLsn(l.startLsn), segSize), segSize),
        ...(stopLsn
          ? {
              stopLsn,
              stopWal: segmentName(
                history?.stopTimeline ?? l.timeline,
                segmentOfLsn(parseLsn(stopLsn) - 1n, segSize),
                segSize,
              ),
            }
          : {}),
      }
    : undefined;
  return {
    source: cfg.name,
    id: d.id,
    series: sysid ?? cfg.name,
    family: d.layout.kind === "snapshot" ? "snapshot" : "physical",
    format: d.format,
    createdAt: createdAt.toISOString(),
    createdAtOrigin: origin,
    sizeBytes: d.sizeBytes,
    ...(pgMajor !== undefined ? { pgMajor } : {}),
    location: d.dir,
    ...(walRange ? { walRange } : {}),
    ...(cfg.wal_archive ? { walArchive: { location: cfg.wal_archive } } : {}),
    ...(d.manifest ? { manifest: d.manifest.path } : {}),
    ...(problems.length ? { problem: problems.join("; ") } : {}),
    detail,
    labels,
  };
}

function compressionOf(name: string) {
  const m = /\.(gz|lz4|zst)$/.exec(name);
  return m ? (m[1] as "gz" | "lz4" | "zst") : undefined;
}

function readHistory(archive: WalArchive, name: string): BackupLabel | undefined {
  for (const candidate of [name, `${name}.gz`]) {
    try {
      const raw = readBackupFile(archive.path(candidate), 1024 * 1024);
      return parseBackupLabel(
        (candidate.endsWith(".gz") ? gunzipSync(raw, { maxOutputLength: 1024 * 1024 }) : raw).toString(
          "utf8",
        ),
      );
    } catch {
      // absent or unreadable: the next candidate, then the manifest or label decide
    }
  }
  return undefined;
}
