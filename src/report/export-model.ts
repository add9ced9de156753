/**
 * The compliance export: drills, violations and coverage over a period, from history alone
 * (no restore, no source listing). The chain is verified first; a broken chain is stated.
 */
import { policiesFor } from "../audit/inventory.js";
import type { Config, PoliciesConfig } from "../config/schema.js";
import type { HistoryRecord } from "../history/history-record.js";
import type { Verdict } from "../model.js";
import type { PolicyInput } from "../policy/evaluate.js";
import { verifiedRpoTarget } from "../policy/rpo.js";
import { type RuleState, seriesStatuses } from "../policy/series-status.js";
import { violationKey } from "../policy/violation-key.js";
import { coverStatus } from "./cover-status.js";
import { backupsOfDrills, drillOfRecord, violationOfRecord } from "./history-drills.js";
import { rtoSeriesOf, type TimedDrill, timelinesOf, withEvidence } from "./model-parts.js";
import {
  type ChainState,
  type CoverageRow,
  type ReportModel,
  type ReportViolation,
  statusLine,
} from "./report-model.js";
import { attentionOf, evidenceOf, scopeOf } from "./report-scope.js";

/** What an export is made of. */
export interface ExportInput {
  config: Config;
  history: readonly HistoryRecord[];
  chain: ChainState;
  /** Inclusive period bounds. */
  from: Date;
  to: Date;
  now: Date;
}

const inPeriod = (r: HistoryRecord, from: number, to: number) => {
  const t = Date.parse(r.recordedAt);
  return Number.isFinite(t) && t >= from && t <= to;
};

/** Builds the export's model. */
export function exportModel(input: ExportInput): ReportModel {
  const { config } = input;
  const from = input.from.getTime();
  const to = input.to.getTime();
  const end = Math.min(to, input.now.getTime());
  const rows = input.history.filter((r) => inPeriod(r, from, to));
  const upToEnd = input.history.filter((r) => Date.parse(r.recordedAt) <= to);
  const drills: TimedDrill[] = rows
    .filter((r) => r.recordType === "drill")
    .map((r) => ({ at: r.recordedAt, runId: r.runId, result: drillOfRecord(r) }));
  const drillsToEnd: TimedDrill[] = upToEnd
    .filter((r) => r.recordType === "drill")
    .map((r) => ({ at: r.recordedAt, result: drillOfRecord(r) }));

  // violations: one line per condition, with when it was first and last recorded
  const byKey = new Map<string, ReportViolation>();
  for (const r of rows) {
    if (r.recordType !== "violation") continue;
    const v = violationOfRecord(r);
    const key = violationKey(v);
    const seen = byKey.get(key);
    if (!seen) {
      byKey.set(key, { ...v, firstSeen: r.recordedAt, lastSeen: r.recordedAt, runs: 1 });
      continue;
    }
    seen.lastSeen = r.recordedAt;
    seen.runs = (seen.runs ?? 0) + 1;
    seen.message = v.message;
    if (v.severity === "critical") seen.severity = "critical";
  }
  const violations = [...byKey.values()].sort(
    (a, b) =>
      (a.severity === b.severity ? 0 : a.severity === "critical" ? -1 : 1) ||
      (a.firstSeen ?? "").localeCompare(b.firstSeen ?? ""),
  );

  // the state at the end of the period: what the last run in it recorded
  const lastRun = rows.at(-1)?.runId;
  const lastRunViolations = rows
    .filter((r) => r.runId === lastRun && r.recordType === "violation")
    .map(violationOfRecord);
  const known = new Set(drillsToEnd.map((d) => d.result.source));
  for (const v of violations) known.add(v.source);
  const backups = backupsOfDrills(drillsToEnd.map((d) => d.result));
  // every configured source is in scope: one the history never mentions is a series without evidence
  const policyInput: PolicyInput = {
    now: new Date(end),
    sources: config.sources.map((sc) => ({
      config: sc,
      policies: policiesFor(config, sc),
      backups: backups.filter((b) => b.source === sc.name),
      findings: [],
    })),
    drills: [],
    history: upToEnd.filter((r) => r.recordType === "drill"),
  };
  const summary = seriesStatuses(policyInput, lastRunViolations);
  const policiesOf = (name: string) => policyInput.sources.find((s) => s.config.name === name)?.policies;
  rpoFromVerified(summary, drillsToEnd, policiesOf, end);
  const reportDrills = drills.map((d) => withEvidence(config.reports.dir, d));
  const evidence = evidenceOf(summary, reportDrills, violations, policiesOf);
  const scope = scopeOf(evidence, reportDrills);

  const notes = [
    "Built from the history file alone: no backup was listed or restored for this export.",
    "Newest backups and timelines show backups that were drilled; rule states are those recorded by the last run in the period" +
      (lastRun ? ` (${lastRun}).` : " (no run in the period)."),
  ];
  const unknown = [...known].filter((s) => !config.sources.some((c) => c.name === s));
  if (unknown.length)
    notes.push(`History names sources that are no longer configured: ${unknown.join(", ")}.`);

  return {
    kind: "export",
    title: "Backup compliance report",
    organization: { ...config.organization },
    period: { from: input.from.toISOString(), to: input.to.toISOString() },
    generatedAt: input.now.toISOString(),
    status: coverStatus({
      series: evidence,
      chainOk: input.chain.ok,
      violations: violations.map((v) => v.severity),
    }),
    scope,
    attention: attentionOf(reportDrills, violations, scope),
    statusLine: statusLine(
      drills.map((d) => d.result),
      violations,
    ),
    summary,
    violations,
    drillPages: [],
    drillRows: reportDrills,
    coverage: coverageOf(
      summary.map((s) => ({ source: s.source, series: s.series, firstSeen: firstSeen(input.history, s) })),
      drills,
      from,
      end,
    ),
    rto: rtoSeriesOf(summary, drills, policiesOf),
    timelines: timelinesOf(summary, backups, drillsToEnd, policiesOf),
    chain: input.chain,
    notes,
  };
}

const RANK: Record<RuleState, number> = { "n/a": 0, ok: 1, unverified: 1, warning: 2, critical: 3 };

/**
 * An export knows backups only from drills: its RPO column judges the newest backup a passing
 * drill proved, at the period's end, against the target for verified backups (else the RPO).
 */
function rpoFromVerified(
  summary: ReturnType<typeof seriesStatuses>,
  drills: readonly TimedDrill[],
  policiesOf: (source: string) => PoliciesConfig | undefined,
  end: number,
): void {
  for (const s of summary) {
    const p = policiesOf(s.source);
    const target = p ? (verifiedRpoTarget(p) ?? p.rpo) : undefined;
    if (target === undefined) continue;
    const proven = drills
      .filter(
        (d) =>
          d.result.source === s.source &&
          d.result.series === s.series &&
          (d.result.verdict === "pass" || d.result.verdict === "warn"),
      )
      .map((d) => Date.parse(d.result.backup.createdAt))
      .filter((t) => Number.isFinite(t) && t <= end);
    if (proven.length === 0) continue;
    const newest = Math.max(...proven);
    s.lastVerifiedBackupAt = new Date(newest).toISOString();
    if (end - newest > target && RANK[s.rpo] < RANK.warning) s.rpo = "warning";
  }
}

/** When the history first mentions a series (or its source as a whole), as epoch ms. */
function firstSeen(
  history: readonly HistoryRecord[],
  s: { source: string; series: string },
): number | undefined {
  let first: number | undefined;
  for (const r of history) {
    // a row of the whole source counts for each series; a source-level line counts every row
    if (r.source !== s.source || (r.series !== s.series && r.series !== "" && s.series !== "")) continue;
    const t = Date.parse(r.recordedAt);
    if (Number.isFinite(t) && (first === undefined || t < first)) first = t;
  }
  return first;
}

/**
 * Drill counts and the longest stretch without a passing drill, per series; a stretch starts
 * at the period's start or when the series was first seen, whichever is later.
 */
export function coverageOf(
  series: ReadonlyArray<{ source: string; series: string; firstSeen?: number }>,
  drills: readonly TimedDrill[],
  from: number,
  end: number,
): CoverageRow[] {
  return series.map(({ source, series: name, firstSeen: seen }) => {
    const mine = drills.filter((d) => d.result.source === source && d.result.series === name);
    const count = (v: Verdict) => mine.filter((d) => d.result.verdict === v).length;
    const passes = mine
      .filter((d) => d.result.verdict === "pass" || d.result.verdict === "warn")
      .map((d) => Date.parse(d.at))
      .sort((a, b) => a - b);
    let longest = 0;
    // unverified since the series appeared; one not seen by the period's end went unverified throughout
    let prev = seen === undefined || seen > end ? from : Math.max(from, seen);
    for (const t of [...passes, end]) {
      longest = Math.max(longest, t - prev);
      prev = t;
    }
    const row: CoverageRow = {
      source,
      series: name,
      drills: mine.length,
      pass: count("pass"),
      warn: count("warn"),
      fail: count("fail"),
      error: count("error"),
      longestUnverifiedMs: Math.max(0, longest),
    };
    if (passes.length) row.lastPass = new Date(passes.at(-1)!).toISOString();
    return row;
  });
}
