/** What a PDF report shows, built from a run (audit) or from history alone (export). */
import type { DrillResult, Inventory, Verdict, Violation } from "../model.js";
import type { SeriesStatus } from "../policy/series-status.js";
import type { ReportStatus } from "./cover-status.js";
import type { FrameworkSection } from "./frameworks/control-mapping.js";

/** One drill as a report shows it. */
export interface ReportDrill {
  /** ISO time the drill was recorded (this run: when the run finished). */
  at: string;
  /** The run that recorded it. */
  runId?: string;
  result: DrillResult;
  /** The inventory from the drill's evidence file, when it could be read. */
  inventory?: Inventory;
  /** Why the evidence could not be read, when it could not. */
  evidenceProblem?: string;
}

/** Restore times of one series for the RTO chart. */
export interface RtoSeries {
  source: string;
  series: string;
  targetMs?: number;
  points: Array<{ at: string; totalMs: number; verdict: Verdict }>;
}

/** Backups of one series for the timeline chart. */
export interface BackupTimeline {
  source: string;
  series: string;
  backups: Array<{ at: string; sizeBytes: number; verified: boolean }>;
  minDays?: number;
  maxDays?: number;
}

/** A violation in an export: how long it was seen. */
export interface ReportViolation extends Violation {
  firstSeen?: string;
  lastSeen?: string;
  /** Runs that recorded it. */
  runs?: number;
}

/** Drill coverage of one series over a period (export). */
export interface CoverageRow {
  source: string;
  series: string;
  drills: number;
  pass: number;
  warn: number;
  fail: number;
  error: number;
  lastPass?: string;
  /** Longest stretch of the period without a passing drill, in ms. */
  longestUnverifiedMs: number;
}

/** The history chain as verified for the report. */
export interface ChainState {
  ok: boolean;
  rows: number;
  head: string;
  problem?: string;
}

/** One series in the report's scope, with what the report may claim about it. */
export interface ScopeRow {
  source: string;
  series: string;
  /** Undefined: no drill and no target asking for one (nothing to claim). */
  status?: ReportStatus;
  needsVerification: boolean;
  drills: number;
  lastPass?: string;
}

/** One problem on the cover's "Needs attention" list. */
export interface AttentionItem {
  /** FAIL, ERROR, CRITICAL, NO EVIDENCE. */
  tag: string;
  /** Colour key (a verdict, severity or report status). */
  tone: string;
  text: string;
  /** When it happened (first and last time, when seen more than once). */
  first?: string;
  last?: string;
  count: number;
}

/** Everything a PDF report renders. */
export interface ReportModel {
  kind: "audit" | "drill" | "check" | "export";
  title: string;
  organization: { name: string; department?: string };
  period: { from: string; to: string };
  generatedAt: string;
  runId?: string;
  label?: string;
  status: ReportStatus;
  /** The series in scope and their status (the cover's table). */
  scope: ScopeRow[];
  /** Each problem once, with its time. */
  attention: AttentionItem[];
  /** One line under the status: counts of drills and violations. */
  statusLine: string;
  summary: SeriesStatus[];
  violations: ReportViolation[];
  /** Audit: one page each. */
  drillPages: ReportDrill[];
  /** Export: one table row each. */
  drillRows: ReportDrill[];
  coverage?: CoverageRow[];
  rto: RtoSeries[];
  timelines: BackupTimeline[];
  chain: ChainState;
  /** Caveats about the data shown (e.g. where a timeline's backups came from). */
  notes: string[];
  /** Export with `--framework`: the controls of each framework, judged for the period. */
  controls?: FrameworkSection[];
  /** Rendered into an evidence bundle: the bundle's content hash, printed on the cover. */
  bundle?: { contentSha256: string };
}

/** The words a report uses for a verdict. */
export const STATUS_WORDS: Record<Verdict, string> = {
  pass: "PASS - every selected backup restored and verified",
  warn: "WARN - verified, with warnings",
  fail: "FAIL - a backup failed or a critical policy is violated",
  error: "ERROR - Attest could not verify everything",
};

/** A count line: "3 drills (2 pass, 1 fail); 4 violations (1 critical, 3 warnings)". */
export function statusLine(
  drills: ReadonlyArray<{ verdict: Verdict }>,
  violations: ReadonlyArray<Violation>,
): string {
  const by = (v: Verdict) => drills.filter((d) => d.verdict === v).length;
  const parts = (["pass", "warn", "fail", "error"] as const)
    .filter((v) => by(v) > 0)
    .map((v) => `${by(v)} ${v}`);
  const crit = violations.filter((v) => v.severity === "critical").length;
  const warn = violations.length - crit;
  const d = `${drills.length} drill${drills.length === 1 ? "" : "s"}${parts.length ? ` (${parts.join(", ")})` : ""}`;
  const v = `${violations.length} violation${violations.length === 1 ? "" : "s"}${violations.length ? ` (${crit} critical, ${warn} warning${warn === 1 ? "" : "s"})` : ""}`;
  return `${d}; ${v}`;
}
