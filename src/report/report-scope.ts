/**
 * The report's scope (each series and what may be claimed about it) and its "Needs attention"
 * list (each problem once, with its time). Pure: both report models build them the same way.
 */
import type { PoliciesConfig } from "../config/schema.js";
import type { Severity, Violation } from "../model.js";
import { isAbortedDrill } from "../policy/drill-outcome.js";
import { verifiedRpoTarget } from "../policy/rpo.js";
import { type SeriesEvidence, seriesReportStatus } from "./cover-status.js";
import type { AttentionItem, ReportDrill, ReportViolation, ScopeRow } from "./report-model.js";

/** Whether the policies ask for a passing drill (verify_every, or a target for verified backups). */
export function needsVerification(p: PoliciesConfig | undefined): boolean {
  return p !== undefined && (p.verify_every !== undefined || verifiedRpoTarget(p) !== undefined);
}

/** A violation counts for a series when it names it or names the whole source. */
const concerns = (v: Violation, source: string, series: string) =>
  v.source === source && (v.series === undefined || v.series === "" || v.series === series);

/** The evidence of each series from the period's drills and violations. */
export function evidenceOf(
  series: ReadonlyArray<{ source: string; series: string }>,
  drills: readonly ReportDrill[],
  violations: readonly Violation[],
  policiesOf: (source: string) => PoliciesConfig | undefined,
): SeriesEvidence[] {
  return series.map(({ source, series: name }) => ({
    source,
    series: name,
    needsVerification: needsVerification(policiesOf(source)),
    verdicts: drills
      .filter((d) => d.result.source === source && d.result.series === name && !isAbortedDrill(d.result))
      .map((d) => d.result.verdict),
    violations: violations.filter((v) => concerns(v, source, name)).map((v): Severity => v.severity),
  }));
}

/** The cover's scope rows. */
export function scopeOf(evidence: readonly SeriesEvidence[], drills: readonly ReportDrill[]): ScopeRow[] {
  return evidence.map((e) => {
    const mine = drills.filter((d) => d.result.source === e.source && d.result.series === e.series);
    const lastPass = mine
      .filter((d) => d.result.verdict === "pass" || d.result.verdict === "warn")
      .map((d) => d.at)
      .sort()
      .at(-1);
    const status = seriesReportStatus(e);
    return {
      source: e.source,
      series: e.series,
      ...(status ? { status } : {}),
      needsVerification: e.needsVerification,
      drills: e.verdicts.length,
      ...(lastPass ? { lastPass } : {}),
    };
  });
}

const name = (source: string, series: string | undefined) => (series ? `${source}/${series}` : source);
const ORDER = ["FAIL", "CRITICAL", "ERROR", "NO EVIDENCE"];

/** Each problem once: failed or errored drills per series, critical violations, series without evidence. */
export function attentionOf(
  drills: readonly ReportDrill[],
  violations: readonly ReportViolation[],
  scope: readonly ScopeRow[],
): AttentionItem[] {
  const items: AttentionItem[] = [];
  const groups = new Map<string, ReportDrill[]>();
  for (const d of [...drills].sort((a, b) => a.at.localeCompare(b.at))) {
    const r = d.result;
    if ((r.verdict !== "fail" && r.verdict !== "error") || isAbortedDrill(r)) continue;
    const key = `${r.source}\0${r.series}\0${r.verdict}`;
    groups.set(key, [...(groups.get(key) ?? []), d]);
  }
  const failed = new Set<string>();
  for (const list of groups.values()) {
    const last = list.at(-1)!.result;
    if (last.verdict === "fail") failed.add(`${last.source}\0${last.series}`);
    const what = last.verdict === "fail" ? "failed" : "could not verify";
    const times = list.length === 1 ? "" : ` ${list.length} times`;
    items.push({
      tag: last.verdict.toUpperCase(),
      tone: last.verdict,
      text: `drill of ${name(last.source, last.series)} ${what}${times}; last: ${last.backup.id}: ${last.reason}`,
      first: list[0]!.at,
      ...(list.length > 1 ? { last: list.at(-1)!.at } : {}),
      count: list.length,
    });
  }
  for (const v of violations) {
    if (v.severity !== "critical") continue;
    // a failed newest drill is already on the list as the drill that failed
    if (v.rule === "last_drill" && failed.has(`${v.source}\0${v.series ?? ""}`)) continue;
    const first = v.firstSeen ?? v.since;
    items.push({
      tag: "CRITICAL",
      tone: "critical",
      text: `${name(v.source, v.series)} ${v.rule}: ${v.message}`,
      ...(first ? { first } : {}),
      ...(v.lastSeen && v.lastSeen !== first ? { last: v.lastSeen } : {}),
      count: v.runs ?? 1,
    });
  }
  for (const s of scope) {
    if (s.status !== "no-evidence") continue;
    items.push({
      tag: "NO EVIDENCE",
      tone: "no-evidence",
      text: `${name(s.source, s.series)}: no restore drill in the period, although a target asks for verification`,
      count: 1,
    });
  }
  return items.sort(
    (a, b) => ORDER.indexOf(a.tag) - ORDER.indexOf(b.tag) || (a.first ?? "").localeCompare(b.first ?? ""),
  );
}
