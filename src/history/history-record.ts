/** The rows of the history CSV: one per drill and one per violation. */
import type { DrillResult, RunResult, Violation } from "../model.js";

/** Columns in file order; `prevHash` and `hash` close every row. */
export const HISTORY_COLUMNS = [
  "recordType",
  "runId",
  "runKind",
  "recordedAt",
  "source",
  "series",
  "backupId",
  "family",
  "format",
  "backupCreatedAt",
  "sizeBytes",
  "runtime",
  "target",
  "verdict",
  "reason",
  "provisionMs",
  "restoreMs",
  "recoveryMs",
  "checksMs",
  "teardownMs",
  "totalMs",
  "measuredRpoSeconds",
  "newestData",
  "reachedLsn",
  "reachedTimestamp",
  "reachedTimeline",
  "checks",
  "rule",
  "severity",
  "message",
  "since",
  "evidence",
  "prevHash",
  "hash",
] as const;

/** A column name. */
export type HistoryColumn = (typeof HISTORY_COLUMNS)[number];

/** One history row; every value is text as stored in the CSV. */
export type HistoryRecord = Record<HistoryColumn, string>;

const blank = (): HistoryRecord => Object.fromEntries(HISTORY_COLUMNS.map((c) => [c, ""])) as HistoryRecord;
const num = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? "" : String(Math.round(n)));

function targetText(t: DrillResult["target"]): string {
  if (!t) return "";
  if (t.kind === "time") return `time:${t.time}`;
  if (t.kind === "lsn") return `lsn:${t.lsn}`;
  return t.kind;
}

/** The rows a run adds (without hashes). */
export function recordsOfRun(run: RunResult, recordedAt: string): HistoryRecord[] {
  const rows: HistoryRecord[] = [];
  for (const d of run.drills) {
    const r = blank();
    Object.assign(r, {
      recordType: "drill",
      runId: run.run.id,
      runKind: run.run.kind,
      recordedAt,
      source: d.source,
      series: d.series,
      backupId: d.backup.id,
      family: d.backup.family,
      format: d.backup.format,
      backupCreatedAt: d.backup.createdAt,
      sizeBytes: num(d.backup.sizeBytes),
      runtime: d.runtime,
      target: targetText(d.target),
      verdict: d.verdict,
      reason: d.reason,
      provisionMs: num(d.timings.provisionMs),
      restoreMs: num(d.timings.restoreMs),
      recoveryMs: num(d.timings.recoveryMs),
      checksMs: num(d.timings.checksMs),
      teardownMs: num(d.timings.teardownMs),
      totalMs: num(d.timings.totalMs),
      measuredRpoSeconds: num(d.measuredRpoSeconds),
      newestData: d.newestData ?? "",
      reachedLsn: d.reached?.lsn ?? "",
      reachedTimestamp: d.reached?.timestamp ?? "",
      reachedTimeline: d.reached?.timeline === undefined ? "" : String(d.reached.timeline),
      checks: d.checks.map((c) => `${c.name}=${c.status}`).join(";"),
      evidence: d.evidence ?? "",
    });
    rows.push(r);
  }
  for (const v of run.violations) rows.push(violationRecord(run, v, recordedAt));
  return rows;
}

function violationRecord(run: RunResult, v: Violation, recordedAt: string): HistoryRecord {
  const r = blank();
  Object.assign(r, {
    recordType: "violation",
    runId: run.run.id,
    runKind: run.run.kind,
    recordedAt,
    source: v.source,
    series: v.series ?? "",
    rule: v.rule,
    severity: v.severity,
    message: v.message,
    since: v.since ?? "",
    evidence: v.evidence ? JSON.stringify(v.evidence) : "",
  });
  return r;
}
