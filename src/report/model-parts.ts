/** Pieces shared by the audit and export report models: charts' data, evidence, statuses. */
import { readFileSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import type { PoliciesConfig } from "../config/schema.js";
import type { Backup, DrillResult, Inventory } from "../model.js";
import type { SeriesStatus } from "../policy/series-status.js";
import { describeError } from "../util/errors.js";
import type { BackupTimeline, ReportDrill, RtoSeries } from "./report-model.js";

/** A drill with the time it was recorded. */
export interface TimedDrill {
  at: string;
  /** The run that recorded it. */
  runId?: string;
  result: DrillResult;
}

/** How many drills per series the RTO chart shows (the newest). */
const RTO_POINTS = 30;

/** Restore times per series, oldest first, the newest RTO_POINTS of each. */
export function rtoSeriesOf(
  series: readonly SeriesStatus[],
  drills: readonly TimedDrill[],
  policiesOf: (source: string) => PoliciesConfig | undefined,
): RtoSeries[] {
  return series.map((s) => {
    const points = drills
      .filter(
        (d) => d.result.source === s.source && d.result.series === s.series && d.result.timings.totalMs > 0,
      )
      .sort((a, b) => a.at.localeCompare(b.at))
      .slice(-RTO_POINTS)
      .map((d) => ({ at: d.at, totalMs: d.result.timings.totalMs, verdict: d.result.verdict }));
    const target = policiesOf(s.source)?.rto;
    return {
      source: s.source,
      series: s.series,
      points,
      ...(target !== undefined ? { targetMs: target } : {}),
    };
  });
}

/** Backups per series with the retention window, and which of them a passing drill verified. */
export function timelinesOf(
  series: readonly SeriesStatus[],
  backups: readonly Backup[],
  drills: readonly TimedDrill[],
  policiesOf: (source: string) => PoliciesConfig | undefined,
): BackupTimeline[] {
  const verified = new Set(
    drills
      .filter((d) => d.result.verdict === "pass" || d.result.verdict === "warn")
      .map((d) => `${d.result.source}\u0000${d.result.backup.id}`),
  );
  return series.map((s) => {
    const r = policiesOf(s.source)?.retention;
    return {
      source: s.source,
      series: s.series,
      backups: backups
        .filter(
          (b) => b.source === s.source && b.series === s.series && Number.isFinite(Date.parse(b.createdAt)),
        )
        .map((b) => ({
          at: b.createdAt,
          sizeBytes: b.sizeBytes,
          verified: verified.has(`${b.source}\u0000${b.id}`),
        })),
      ...(r?.min_days !== undefined ? { minDays: r.min_days } : {}),
      ...(r?.max_days !== undefined ? { maxDays: r.max_days } : {}),
    };
  });
}

/** Loads a drill's inventory from its evidence file (relative to the reports dir). */
export function withEvidence(reportsDir: string, d: TimedDrill): ReportDrill {
  const out: ReportDrill = { at: d.at, result: d.result, ...(d.runId ? { runId: d.runId } : {}) };
  const rel = d.result.evidence;
  if (!rel) return out;
  const file = resolve(reportsDir, rel);
  const inside = relative(resolve(reportsDir), file);
  if (inside.startsWith("..") || isAbsolute(inside)) {
    out.evidenceProblem = `evidence path ${rel} lies outside the reports folder`;
    return out;
  }
  try {
    const doc = JSON.parse(readFileSync(file, "utf8")) as { inventory?: Inventory; databases?: unknown };
    const inv = doc.inventory ?? (Array.isArray(doc.databases) ? (doc as Inventory) : undefined);
    if (inv) out.inventory = inv;
  } catch (err) {
    out.evidenceProblem = `evidence ${rel} could not be read: ${describeError(err)}`;
  }
  return out;
}
