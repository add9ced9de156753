/** Rule `wal_continuity`: turns a source's WAL findings (gaps, missing WAL, stalled archiving) into violations. */
import type { Finding, Violation } from "../model.js";

/** Finding kinds this rule reports. */
export const WAL_FINDING_KINDS = [
  "wal_gap",
  "wal_missing_for_backup",
  "wal_stalled",
  "wal_archive_missing",
  "wal_archive_unreadable",
] as const;

/** Evaluates `wal_continuity` for one source's findings. */
export function walContinuityRule(source: string, findings: readonly Finding[]): Violation[] {
  const kinds: readonly string[] = WAL_FINDING_KINDS;
  return findings
    .filter((f) => f.source === source && kinds.includes(f.kind))
    .map((f) => {
      const v: Violation = {
        source,
        rule: "wal_continuity",
        severity: f.severity,
        message: f.message,
        evidence: { aspect: aspectOf(f), kind: f.kind, ...(f.backupId ? { backupId: f.backupId } : {}) },
      };
      if (f.series) v.series = f.series;
      return v;
    });
}

/** What tells two findings of one kind apart across runs (for alert de-duplication). */
function aspectOf(f: Finding): string {
  if (f.backupId) return `${f.kind}:${f.backupId}`;
  // a gap names its segments; a stalled archive's message changes every run, its kind does not
  return f.kind === "wal_gap" ? `${f.kind}:${f.message}` : f.kind;
}
