/** Evaluates every policy rule for every source. Pure: no I/O, the clock is an argument. */
import type { PoliciesConfig, SourceConfig } from "../config/schema.js";
import type { HistoryRecord } from "../history/history-record.js";
import type { Backup, DrillResult, Finding, Violation } from "../model.js";
import { clockSkewRule } from "./clock-skew.js";
import { lastDrillRule } from "./last-drill.js";
import { maxGapRule } from "./max-gap.js";
import { retentionRule } from "./retention.js";
import { rpoRule } from "./rpo.js";
import { rtoRule } from "./rto.js";
import { drillRecords, type SeriesRule, seriesInputs } from "./series-input.js";
import { sizeAnomalyRule } from "./size-anomaly.js";
import { type DiskSpace, storageFreeRule } from "./storage-free.js";
import { verifyEveryRule } from "./verify-every.js";
import { compareViolations } from "./violation-key.js";
import { walContinuityRule } from "./wal-continuity.js";

/** Everything the rules look at. */
export interface PolicyInput {
  now: Date;
  sources: Array<{
    config: SourceConfig;
    /** Top-level policies merged with the source's overrides. */
    policies: PoliciesConfig;
    backups: Backup[];
    findings: Finding[];
  }>;
  /** Drills of the current run. */
  drills: DrillResult[];
  /** Past history rows (before this run). */
  history: HistoryRecord[];
  /** Free space of the sources' local backup filesystems (measured for `storage_free`). */
  disks?: DiskSpace[];
}

/** Every rule name a violation can carry. */
export const POLICY_RULES = [
  "rpo",
  "rto",
  "retention",
  "max_gap",
  "verify_every",
  "size_anomaly",
  "wal_continuity",
  "clock_skew",
  "last_drill",
  "storage_free",
] as const;
/** A rule name. */
export type PolicyRule = (typeof POLICY_RULES)[number];

/** The per-series rules, in report order. */
const SERIES_RULES: readonly SeriesRule[] = [
  rpoRule,
  rtoRule,
  retentionRule,
  maxGapRule,
  verifyEveryRule,
  sizeAnomalyRule,
  clockSkewRule,
  lastDrillRule,
];

/** Returns the violations that hold now, critical first. */
export function evaluatePolicies(input: PolicyInput): Violation[] {
  const now = input.now.getTime();
  const drills = drillRecords(input.history, input.drills, now);
  const out: Violation[] = [];
  for (const src of input.sources) {
    const source = src.config.name;
    // a source that could not be listed carries a finding of its own; its emptiness means nothing
    const unlisted = src.findings.some((f) => f.kind === "list_failed");
    if (src.backups.length === 0) {
      if (!unlisted) {
        out.push({
          source,
          rule: "rpo",
          severity: "critical",
          message: `source ${source} has no backups at all`,
          evidence: { aspect: "none", count: 0 },
        });
      }
    } else {
      for (const series of seriesInputs(source, src.policies, src.backups, drills, now)) {
        for (const rule of SERIES_RULES) out.push(...rule(series));
      }
    }
    out.push(...walContinuityRule(source, src.findings));
    out.push(...storageFreeRule(source, src.policies.storage_free, input.disks ?? []));
  }
  return out.sort(compareViolations);
}
