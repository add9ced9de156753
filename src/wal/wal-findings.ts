/** Turns a WAL continuity analysis into Findings: gaps, backups without their WAL, stalls. */
import type { Finding } from "../model.js";
import { formatDuration } from "../util/duration.js";
import type { WalArchive } from "./wal-archive.js";
import { analyzeContinuity, type BackupWalNeed, type ContinuityReport } from "./wal-continuity.js";
import { historyFileName } from "./wal-names.js";

/** The finding kinds of WAL inspection. */
export const WAL_FINDING_KINDS = [
  "wal_gap",
  "wal_missing_for_backup",
  "wal_stalled",
  "wal_archive_unreadable",
] as const;

/** Options of inspectWal. */
export interface WalInspectionOptions {
  source: string;
  series?: string;
  now: Date;
  /** Age of the newest archived segment that earns a warning / a critical finding. */
  stallWarningMs: number;
  stallCriticalMs: number;
}

/** What a WAL inspection found, with the analysis behind it. */
export interface WalInspection {
  report: ContinuityReport;
  findings: Finding[];
  /** The newest archived segment by modification time. */
  newest?: { name: string; archivedAt: string };
}

const iso = (d: Date | undefined) => d?.toISOString();
const range = (first: string, last: string) => (first === last ? first : `${first}..${last}`);

/** Inspects an archive against the backups that need it. Stats only the few segments it names. */
export function inspectWal(
  archive: WalArchive,
  backups: readonly BackupWalNeed[],
  opts: WalInspectionOptions,
): WalInspection {
  const report = analyzeContinuity(archive.index, archive.histories, backups);
  const base = { source: opts.source, ...(opts.series ? { series: opts.series } : {}) };
  const findings: Finding[] = [];
  const consistentAt = new Map(backups.map((b) => [b.id, b.consistentAt]));

  for (const p of archive.problems) {
    findings.push({
      ...base,
      kind: "wal_archive_unreadable",
      severity: "warning",
      message: `WAL archive ${archive.dir}: ${p}`,
    });
  }

  for (const gap of report.gaps) {
    const beforeFile =
      gap.beforeSeg !== undefined ? archive.index.files.get(gap.tli)?.get(gap.beforeSeg) : undefined;
    const lastBefore = beforeFile ? iso(archive.mtimeOf(beforeFile)) : undefined;
    const from = lastBefore
      ? `${lastBefore} (archival of ${gap.before}, the last segment before the gap)`
      : "the start of the archive";
    const until = gap.resumesWith
      ? `${gap.resumesWith.consistentAt ?? "the consistency point"} (${gap.resumesWith.id} consistent)`
      : "the next base backup (none has been taken since)";
    const stranded = gap.strandedBackups.length
      ? `; backups that cannot be rolled forward past it: ${gap.strandedBackups.join(", ")}`
      : "";
    const tls =
      gap.timelines.length > 1 || gap.timelines[0] !== gap.tli
        ? ` (recovery path of timeline ${gap.timelines.join(", ")})`
        : "";
    findings.push({
      ...base,
      kind: "wal_gap",
      severity: "critical",
      message:
        `timeline ${gap.tli}${tls}: WAL ${range(gap.first, gap.last)} missing (${gap.count} segment${gap.count > 1 ? "s" : ""}` +
        `${gap.after ? `, archive continues at ${gap.after}` : ""}); PITR impossible between ${from} and ${until}${stranded}`,
    });
  }

  for (const b of report.backups) {
    if (b.missing.length === 0) continue;
    const missing = b.missing.map((m) => range(m.first, m.last)).join(", ");
    findings.push({
      ...base,
      backupId: b.id,
      kind: "wal_missing_for_backup",
      severity: "critical",
      message: `backup ${b.id} needs WAL ${range(b.needed.first, b.needed.last)} to reach consistency${
        consistentAt.get(b.id) ? ` (${consistentAt.get(b.id)})` : ""
      }; missing from the archive: ${missing}; it cannot be restored`,
    });
  }

  for (const t of report.timelines) {
    if (!t.historyMissing) continue;
    findings.push({
      ...base,
      // a broken path to a timeline is a gap in what can be recovered: the policy treats it as one
      kind: "wal_gap",
      severity: "critical",
      message:
        `timeline ${t.tli} has ${t.segments} archived segment${t.segments > 1 ? "s" : ""} (newest ${t.newest}) but no ${historyFileName(t.tli)}; ` +
        `recovery cannot switch to timeline ${t.tli}, so what was written on it cannot be restored`,
    });
  }

  let newest: WalInspection["newest"];
  for (const t of report.timelines) {
    const m = archive.mtimeOf(archive.index.files.get(t.tli)?.get(t.toSeg) ?? t.newest);
    if (m && (!newest || m.toISOString() > newest.archivedAt))
      newest = { name: t.newest, archivedAt: m.toISOString() };
  }
  if (!newest) {
    findings.push({
      ...base,
      kind: "wal_stalled",
      severity: "critical",
      message: `WAL archive ${archive.dir} holds no segments`,
    });
  } else {
    const age = opts.now.getTime() - Date.parse(newest.archivedAt);
    const severity =
      age >= opts.stallCriticalMs ? "critical" : age >= opts.stallWarningMs ? "warning" : undefined;
    if (severity) {
      findings.push({
        ...base,
        kind: "wal_stalled",
        severity,
        message: `newest archived WAL ${newest.name} is ${formatDuration(age)} old (archived ${newest.archivedAt}); archiving may have stopped`,
      });
    }
  }
  return { report, findings, ...(newest ? { newest } : {}) };
}
