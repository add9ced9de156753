/**
 * What a report may claim, per series and for its cover, from the evidence of its period.
 * Pure. The order of claims, strongest first: FAIL (a backup failed or a critical policy is
 * violated), ERROR (Attest could not verify, or the history chain is broken), NO EVIDENCE (a
 * series that must be verified has no drill in the period, or nothing was drilled at all),
 * WARN, PASS. PASS therefore always means: something was restored, and nothing contradicts it.
 */
import type { Severity, Verdict } from "../model.js";

/** The statuses a report can show. */
export const REPORT_STATUSES = ["pass", "warn", "no-evidence", "error", "fail"] as const;
/** A report or series status. */
export type ReportStatus = (typeof REPORT_STATUSES)[number];

/** The evidence of one series in the period. */
export interface SeriesEvidence {
  source: string;
  series: string;
  /** A target asks for verification (verify_every, rpo_verified or rpo + verify_every). */
  needsVerification: boolean;
  /** Verdicts of the period's drills of the series (drills aborted by a signal left out). */
  verdicts: readonly Verdict[];
  /** Severities of the violations recorded for the series (or its source) in the period. */
  violations: readonly Severity[];
}

/** A series' status, and `undefined` for a series with no drill and no target (nothing to claim). */
export function seriesReportStatus(s: SeriesEvidence): ReportStatus | undefined {
  if (s.verdicts.includes("fail") || s.violations.includes("critical")) return "fail";
  if (s.verdicts.includes("error")) return "error";
  if (s.verdicts.length === 0) return s.needsVerification ? "no-evidence" : undefined;
  if (s.verdicts.includes("warn") || s.violations.length > 0) return "warn";
  return "pass";
}

/** The cover's status: the strongest claim of any series, the chain, and the period as a whole. */
export function coverStatus(input: {
  series: readonly SeriesEvidence[];
  chainOk: boolean;
  /** Severities of every violation in the period (source-wide ones included). */
  violations: readonly Severity[];
}): ReportStatus {
  const rank = (s: ReportStatus) => REPORT_STATUSES.indexOf(s);
  let worst: ReportStatus = "pass";
  const raise = (s: ReportStatus | undefined) => {
    if (s !== undefined && rank(s) > rank(worst)) worst = s;
  };
  for (const s of input.series) raise(seriesReportStatus(s));
  if (input.violations.includes("critical")) raise("fail");
  else if (input.violations.length) raise("warn");
  if (!input.chainOk) raise("error");
  // no drill at all in the period: nothing was verified, whatever the targets say
  if (input.series.every((s) => s.verdicts.length === 0)) raise("no-evidence");
  return worst;
}

/** The words a report uses for a status. */
export const REPORT_STATUS_WORDS: Record<ReportStatus, string> = {
  pass: "PASS - every selected backup restored and verified",
  warn: "WARN - verified, with warnings",
  fail: "FAIL - a backup failed or a critical policy is violated",
  error: "ERROR - Attest could not verify everything",
  "no-evidence": "NO EVIDENCE - no restore drill proves the backups of the period",
};

/** The label of a status: "NO EVIDENCE", "PASS", … */
export const statusLabel = (s: ReportStatus): string => s.replace("-", " ").toUpperCase();
