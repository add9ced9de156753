/** What a policy rule sees: one (source, series) with its backups, drills and targets. */
import type { PoliciesConfig } from "../config/schema.js";
import type { HistoryRecord } from "../history/history-record.js";
import type { Backup, DrillResult, Severity, Verdict, Violation } from "../model.js";
import { isAbortedDrill } from "./drill-outcome.js";

/** A drill as the rules need it, whether from this run or from a history row. */
export interface DrillRecord {
  source: string;
  series: string;
  backupId: string;
  /** Epoch ms the drilled backup is consistent as of (NaN when unknown). */
  backupAt: number;
  sizeBytes?: number;
  verdict: Verdict;
  totalMs?: number;
  measuredRpoSeconds?: number;
  /** Epoch ms the drill was recorded (this run's drills: the evaluation time). */
  at: number;
  /** True for a drill of the current run. */
  current: boolean;
  /** Ended by Attest's shutdown or a user's interrupt: it says nothing about the backup. */
  aborted: boolean;
}

/** A backup with its creation time parsed. */
export interface TimedBackup {
  backup: Backup;
  /** Epoch ms of `createdAt`. */
  at: number;
}

/** The input of one rule for one (source, series). */
export interface SeriesInput {
  source: string;
  series: string;
  policies: PoliciesConfig;
  /** Epoch ms of the evaluation. */
  now: number;
  /** Backups dated up to now (plus the clock tolerance), oldest first. */
  backups: TimedBackup[];
  /** Backups dated in the future beyond the clock tolerance. */
  futureBackups: TimedBackup[];
  /** Drills of this series, oldest first; this run's drills last. */
  drills: DrillRecord[];
}

/** A rule: a pure function from one series to the violations that hold now. */
export type SeriesRule = (input: SeriesInput) => Violation[];

/** How far in the future a backup may be dated before it counts as clock skew. */
export const CLOCK_TOLERANCE_MS = 5 * 60_000;

/** Whether a drill proves its backup restorable. */
export const isPassing = (v: Verdict): boolean => v === "pass" || v === "warn";

/** Parses an ISO time to epoch ms (NaN when absent or invalid). */
export function epoch(iso: string | undefined): number {
  return iso ? Date.parse(iso) : Number.NaN;
}

/** ISO text of an epoch ms. */
export const iso = (ms: number): string => new Date(ms).toISOString();

/** A short UTC date-time for messages: `2024-05-02 08:00 UTC`. */
export function when(ms: number): string {
  return `${iso(ms).slice(0, 16).replace("T", " ")} UTC`;
}

/** `app-dumps/app`, or just the source when the series is empty. */
export function label(source: string, series: string | undefined): string {
  return series ? `${source}/${series}` : source;
}

/** Builds a violation of one series. */
export function violation(
  s: Pick<SeriesInput, "source" | "series">,
  rule: string,
  severity: Severity,
  message: string,
  evidence: Record<string, unknown>,
  since?: number,
): Violation {
  const v: Violation = { source: s.source, rule, severity, message, evidence };
  if (s.series) v.series = s.series;
  if (since !== undefined && Number.isFinite(since)) v.since = iso(since);
  return v;
}

const optionalNumber = (text: string): number | undefined => {
  if (text === "") return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
};

/** Drill records from past history rows and this run's drills, oldest first. */
export function drillRecords(
  history: readonly HistoryRecord[],
  drills: readonly DrillResult[],
  now: number,
): DrillRecord[] {
  const out: DrillRecord[] = [];
  for (const r of history) {
    if (r.recordType !== "drill") continue;
    out.push({
      source: r.source,
      series: r.series,
      backupId: r.backupId,
      backupAt: epoch(r.backupCreatedAt),
      sizeBytes: optionalNumber(r.sizeBytes),
      verdict: r.verdict as Verdict,
      totalMs: optionalNumber(r.totalMs),
      measuredRpoSeconds: optionalNumber(r.measuredRpoSeconds),
      at: epoch(r.recordedAt),
      current: false,
      aborted: isAbortedDrill({ verdict: r.verdict as Verdict, reason: r.reason }),
    });
  }
  out.sort((a, b) => a.at - b.at);
  for (const d of drills) {
    out.push({
      source: d.source,
      series: d.series,
      backupId: d.backup.id,
      backupAt: epoch(d.backup.createdAt),
      sizeBytes: d.backup.sizeBytes,
      verdict: d.verdict,
      totalMs: d.timings.totalMs,
      measuredRpoSeconds: d.measuredRpoSeconds,
      at: now,
      current: true,
      aborted: isAbortedDrill(d),
    });
  }
  return out;
}

/** Splits a source's backups into series inputs (series from backups and from this run's drills). */
export function seriesInputs(
  source: string,
  policies: PoliciesConfig,
  backups: readonly Backup[],
  drills: readonly DrillRecord[],
  now: number,
): SeriesInput[] {
  const names = new Set<string>();
  for (const b of backups) names.add(b.series);
  for (const d of drills) if (d.source === source && d.current) names.add(d.series);
  return [...names].sort().map((series) => {
    const timed = backups
      .filter((b) => b.series === series)
      .map((backup) => ({ backup, at: epoch(backup.createdAt) }))
      .filter((t) => Number.isFinite(t.at))
      .sort((a, b) => a.at - b.at);
    return {
      source,
      series,
      policies,
      now,
      backups: timed.filter((t) => t.at <= now + CLOCK_TOLERANCE_MS),
      futureBackups: timed.filter((t) => t.at > now + CLOCK_TOLERANCE_MS),
      drills: drills.filter((d) => d.source === source && d.series === series),
    };
  });
}
