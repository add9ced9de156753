/** A stable identity for a violation across runs (alert de-duplication, export aggregation). */
import type { Violation } from "../model.js";

/** `source/series/rule/aspect`: the same key while the same condition holds. */
export function violationKey(v: Pick<Violation, "source" | "series" | "rule" | "evidence">): string {
  const aspect = typeof v.evidence?.aspect === "string" ? v.evidence.aspect : "";
  return [v.source, v.series ?? "", v.rule, aspect].join("/");
}

const SEVERITY_ORDER = { critical: 0, warning: 1 } as const;

/** Orders violations: critical first, then by source, series, rule. */
export function compareViolations(a: Violation, b: Violation): number {
  return (
    SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
    a.source.localeCompare(b.source) ||
    (a.series ?? "").localeCompare(b.series ?? "") ||
    a.rule.localeCompare(b.rule)
  );
}
