/**
 * The kinds of evidence a control can be answered with, each judged for the report's period
 * from the same model the PDF shows, with the history rows (1-based, as `attest history
 * verify` counts them) that support the judgement.
 */
import type { HistoryRecord } from "../../history/history-record.js";
import type { RuleState } from "../../policy/series-status.js";
import type { ReportModel } from "../report-model.js";

/** Evidence kinds a framework file may name. */
export const EVIDENCE_KINDS = [
  "drills",
  "restorable",
  "integrity",
  "rpo",
  "rto",
  "retention",
  "coverage",
  "chain",
] as const;
/** An evidence kind. */
export type EvidenceKind = (typeof EVIDENCE_KINDS)[number];

/** A control's or an evidence kind's status for the period. */
export type ControlStatus = "met" | "not-met" | "no-evidence";

/** One kind of evidence, judged. */
export interface EvidenceAssessment {
  kind: EvidenceKind;
  label: string;
  status: ControlStatus;
  detail: string;
  /** History rows that support the judgement. */
  rows: number[];
}

const LABELS: Record<EvidenceKind, string> = {
  drills: "Restore drills run",
  restorable: "Backups proven restorable",
  integrity: "Integrity checks",
  rpo: "RPO against target",
  rto: "RTO against target",
  retention: "Retention",
  coverage: "Coverage per series",
  chain: "Tamper-evident history",
};

/** Where the period's history rows are: drill rows by run, source, series and backup; violations by rule. */
export interface RowIndex {
  drill(runId: string | undefined, source: string, series: string, backupId: string): number | undefined;
  violations(rule: string): number[];
}

/** Indexes the rows of [from, to] of the whole history. */
export function rowIndex(history: readonly HistoryRecord[], from: string, to: string): RowIndex {
  const lo = Date.parse(from);
  const hi = Date.parse(to);
  const drills = new Map<string, number>();
  const violations = new Map<string, number[]>();
  history.forEach((r, i) => {
    const t = Date.parse(r.recordedAt);
    if (!(t >= lo && t <= hi)) return;
    if (r.recordType === "drill") drills.set([r.runId, r.source, r.series, r.backupId].join("\0"), i + 1);
    else violations.set(r.rule, [...(violations.get(r.rule) ?? []), i + 1]);
  });
  return {
    drill: (runId, source, series, backupId) =>
      drills.get([runId ?? "", source, series, backupId].join("\0")),
    violations: (rule) => violations.get(rule) ?? [],
  };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 || word.endsWith("s") ? "" : "s"}`;

/** Judges a rule the summary holds per series: any warning or critical is not met; no target is no evidence. */
function ruleKind(
  m: ReportModel,
  rule: "rpo" | "rto" | "retention",
  rows: RowIndex,
  passRows: number[],
  what: string,
): Omit<EvidenceAssessment, "kind" | "label"> {
  const states = m.summary.map((s) => ({ name: `${s.source}/${s.series}`, state: s[rule] as RuleState }));
  const bad = states.filter((s) => s.state === "warning" || s.state === "critical");
  if (bad.length)
    return {
      status: "not-met",
      detail: `${what} not met for ${bad.map((b) => `${b.name} (${b.state})`).join(", ")}`,
      rows: rows.violations(rule),
    };
  const ok = states.filter((s) => s.state === "ok");
  if (ok.length === 0)
    return {
      status: "no-evidence",
      detail: states.some((s) => s.state === "unverified")
        ? `no passing drill proves ${what} for any series`
        : `no ${what} target is configured`,
      rows: [],
    };
  const unjudged = states.length - ok.length;
  return {
    status: "met",
    detail: `${what} met for ${plural(ok.length, "series")}${unjudged ? ` (${unjudged} without a target or proof)` : ""}`,
    rows: passRows,
  };
}

/** Judges one evidence kind for the period. */
export function assessEvidence(
  kind: EvidenceKind,
  m: ReportModel,
  history: readonly HistoryRecord[],
): EvidenceAssessment {
  const rows = rowIndex(history, m.period.from, m.period.to);
  const drills = m.drillRows.length ? m.drillRows : m.drillPages;
  const rowOf = (d: (typeof drills)[number]) =>
    rows.drill(d.runId, d.result.source, d.result.series, d.result.backup.id);
  const rowsOf = (ds: typeof drills) => ds.map(rowOf).filter((n): n is number => n !== undefined);
  const passed = drills.filter((d) => d.result.verdict === "pass" || d.result.verdict === "warn");
  const judged = (r: Omit<EvidenceAssessment, "kind" | "label">): EvidenceAssessment => ({
    kind,
    label: LABELS[kind],
    ...r,
  });

  switch (kind) {
    case "drills":
      return judged(
        drills.length
          ? { status: "met", detail: `${plural(drills.length, "drill")} in the period`, rows: rowsOf(drills) }
          : { status: "no-evidence", detail: "no restore drill ran in the period", rows: [] },
      );
    case "restorable": {
      // the newest drill of each series decides: an old failure since fixed is history, not the state
      const newest = new Map<string, (typeof drills)[number]>();
      for (const d of drills) newest.set(`${d.result.source}/${d.result.series}`, d);
      const failing = [...newest].filter(([, d]) => d.result.verdict === "fail");
      if (failing.length)
        return judged({
          status: "not-met",
          detail: `newest drill FAILED for ${failing.map(([k]) => k).join(", ")}`,
          rows: rowsOf(failing.map(([, d]) => d)),
        });
      if (passed.length === 0)
        return judged({
          status: "no-evidence",
          detail: "no drill restored a backup in the period",
          rows: [],
        });
      return judged({
        status: "met",
        detail: `${plural(passed.length, "backup")} restored and verified`,
        rows: rowsOf(passed),
      });
    }
    case "integrity": {
      const checked = drills.filter((d) => d.result.checks.length > 0);
      const failed = checked.filter((d) => d.result.checks.some((c) => c.status === "fail"));
      if (failed.length)
        return judged({
          status: "not-met",
          detail: `${plural(failed.length, "drill")} with a failed check`,
          rows: rowsOf(failed),
        });
      const ok = checked.filter((d) => d.result.verdict === "pass" || d.result.verdict === "warn");
      if (ok.length === 0)
        return judged({ status: "no-evidence", detail: "no drill ran its checks", rows: [] });
      const names = [...new Set(ok.flatMap((d) => d.result.checks.map((c) => c.name)))].sort();
      return judged({
        status: "met",
        detail: `checks passed in ${plural(ok.length, "drill")}: ${names.join(", ")}`,
        rows: rowsOf(ok),
      });
    }
    case "rpo":
      return judged(ruleKind(m, "rpo", rows, rowsOf(passed), "RPO"));
    case "rto":
      return judged(ruleKind(m, "rto", rows, rowsOf(passed), "RTO"));
    case "retention":
      return judged(ruleKind(m, "retention", rows, [], "retention"));
    case "coverage": {
      const needed = m.scope.filter((s) => s.needsVerification || s.drills > 0);
      const missing = m.scope.filter((s) => s.status === "no-evidence");
      if (needed.length === 0)
        return judged({ status: "no-evidence", detail: "no series in scope", rows: [] });
      if (missing.length)
        return judged({
          status: "no-evidence",
          detail: `no drill in the period for ${missing.map((s) => `${s.source}/${s.series}`).join(", ")}`,
          rows: [],
        });
      return judged({
        status: "met",
        detail: `every one of ${plural(needed.length, "series")} in scope was drilled`,
        rows: rowsOf(drills),
      });
    }
    case "chain":
      return judged(
        m.chain.ok
          ? {
              status: "met",
              detail: `history chain intact: ${plural(m.chain.rows, "row")}, head ${m.chain.head}`,
              rows: [],
            }
          : { status: "not-met", detail: `history chain broken: ${m.chain.problem ?? "unknown"}`, rows: [] },
      );
  }
}
