/**
 * Deciding what to alert: the conditions a run shows, compared with the remembered ones. Pure.
 * New conditions alert at once, ongoing ones again after `repeat_after`, cleared ones resolve.
 * A failed drill ("backup failed") alerts at once; a drill that could not verify alerts only
 * after `error_after` consecutive runs; a drill aborted by Attest's shutdown or a user never does.
 */
import type { DrillResult, RunResult, Severity } from "../../model.js";
import { isAbortedDrill, verdictWords } from "../../policy/drill-outcome.js";
import { violationKey } from "../../policy/violation-key.js";
import type { AlertCondition, AlertState } from "./alert-state.js";

/** One thing to tell people. */
export interface AlertEvent {
  type: "new" | "repeat" | "resolved";
  condition: AlertCondition;
  /** For a resolved event: what passed, and when. */
  resolution?: string;
}

/** What a plan needs besides the run. */
export interface PlanOptions {
  now: Date;
  repeatAfterMs: number;
  minSeverity: Severity;
  resolved: boolean;
  /** Sources this run evaluated: only their conditions can clear. */
  scope: ReadonlySet<string>;
  /** Consecutive runs a series' newest drill must be `error` before it alerts (default 2). */
  errorAfter?: number;
  /** Severity of a persisting `error` (default warning: the backup is not known to be bad). */
  errorSeverity?: Severity;
}

type Condition = Omit<AlertCondition, "firstSeen" | "lastAlerted">;

/** Rules whose condition a drill condition already carries (no second page for one problem). */
const DRILL_RULES = new Set(["last_drill"]);

/** The newest drill of each series in a run that ended with a verdict (aborted drills left out). */
export function lastDrills(run: RunResult): Map<string, DrillResult> {
  const last = new Map<string, DrillResult>();
  for (const d of run.drills) if (!isAbortedDrill(d)) last.set(`${d.source}/${d.series}`, d);
  return last;
}

/** The conditions a run shows now (without alert bookkeeping); `erroring` lists series whose error persists. */
export function conditionsOf(
  run: RunResult,
  minSeverity: Severity,
  erroring: ReadonlySet<string> = new Set(),
  errorSeverity: Severity = "warning",
): Condition[] {
  const out: Condition[] = [];
  for (const v of run.violations) {
    if (minSeverity === "critical" && v.severity !== "critical") continue;
    if (DRILL_RULES.has(v.rule)) continue;
    out.push({
      key: `violation:${violationKey(v)}`,
      kind: "violation",
      source: v.source,
      ...(v.series ? { series: v.series } : {}),
      rule: v.rule,
      severity: v.severity,
      message: v.message,
      fingerprint: v.severity,
    });
  }
  for (const [key, d] of lastDrills(run)) {
    if (d.verdict === "fail") {
      out.push({
        key: `drill:${key}`,
        kind: "drill",
        source: d.source,
        series: d.series,
        severity: "critical",
        message: `restore drill of ${key} FAILED on ${d.backup.id}: ${d.reason}`,
        fingerprint: `fail:${d.backup.id}`,
      });
    } else if (d.verdict === "error" && erroring.has(key)) {
      out.push({
        key: `drill-error:${key}`,
        kind: "drill",
        source: d.source,
        series: d.series,
        severity: errorSeverity,
        message: `restore drill of ${key} ${verdictWords("error")} on ${d.backup.id}: ${d.reason}`,
        // the same problem on the next backup is the same condition: it is Attest that cannot verify
        fingerprint: "error",
      });
    }
  }
  for (const f of run.findings ?? []) {
    if (f.kind !== "list_failed") continue;
    out.push({
      key: `finding:${f.source}/${f.kind}`,
      kind: "finding",
      source: f.source,
      severity: f.severity,
      message: f.message,
      fingerprint: f.kind,
    });
  }
  return out;
}

/** Consecutive `error` runs per series after this run: a verdict resets, an abort leaves it as it was. */
export function errorStreaks(
  run: RunResult,
  before: Readonly<Record<string, number>>,
): Record<string, number> {
  const next = { ...before };
  for (const [key, d] of lastDrills(run)) {
    if (d.verdict === "error") next[key] = (next[key] ?? 0) + 1;
    else delete next[key];
  }
  return next;
}

const at = (iso: string) => `${iso.slice(0, 16).replace("T", " ")} UTC`;

/** What a resolved condition's notice says passed, and when. */
function resolutionOf(c: AlertCondition, run: RunResult, now: string): string {
  const d = c.series !== undefined ? lastDrills(run).get(`${c.source}/${c.series}`) : undefined;
  if (c.kind === "drill" && d) {
    return `restore drill of ${c.source}/${c.series} ${d.verdict.toUpperCase()} on ${d.backup.id} (backup of ${at(d.backup.createdAt)}), run ${run.run.id} at ${at(run.run.finishedAt)}`;
  }
  return `${c.source} evaluated by run ${run.run.id} at ${at(now)}: the condition no longer holds`;
}

/** Compares a run's conditions with the state: the events to send and the next state. */
export function planAlerts(
  run: RunResult,
  state: AlertState,
  opts: PlanOptions,
): { events: AlertEvent[]; next: AlertState } {
  const now = opts.now.toISOString();
  const streaks = errorStreaks(run, state.errorStreaks ?? {});
  const erroring = new Set(
    Object.entries(streaks)
      .filter(([, n]) => n >= (opts.errorAfter ?? 2))
      .map(([k]) => k),
  );
  const current = conditionsOf(run, opts.minSeverity, erroring, opts.errorSeverity);
  const seen = new Set<string>();
  const events: AlertEvent[] = [];
  const conditions: Record<string, AlertCondition> = {};

  for (const c of current) {
    if (seen.has(c.key)) continue;
    seen.add(c.key);
    const before = state.conditions[c.key];
    if (!before || before.fingerprint !== c.fingerprint) {
      const cond = { ...c, firstSeen: before?.firstSeen ?? now, lastAlerted: now };
      conditions[c.key] = cond;
      events.push({ type: "new", condition: cond });
    } else if (opts.now.getTime() - Date.parse(before.lastAlerted) >= opts.repeatAfterMs) {
      const cond = { ...c, firstSeen: before.firstSeen, lastAlerted: now };
      conditions[c.key] = cond;
      events.push({ type: "repeat", condition: cond });
    } else conditions[c.key] = { ...before, message: c.message };
  }

  const verdicts = new Map([...lastDrills(run)].map(([k, d]) => [k, d.verdict]));
  for (const [key, before] of Object.entries(state.conditions)) {
    if (seen.has(key)) continue;
    const verdict = verdicts.get(`${before.source}/${before.series}`);
    // a failed drill clears only when a drill of that series passes; an error when the series
    // gets a verdict again; the rest when their source was evaluated
    const superseded = key.startsWith("drill-error:") && verdict === "fail";
    const cleared =
      before.kind === "drill"
        ? verdict === "pass" || verdict === "warn" || superseded
        : opts.scope.has(before.source);
    if (!cleared) {
      conditions[key] = before;
      continue;
    }
    // an error overtaken by a failure is not "resolved": the failure alerts on its own
    if (opts.resolved && !superseded) {
      events.push({
        type: "resolved",
        condition: { ...before, lastAlerted: now },
        resolution: resolutionOf(before, run, now),
      });
    }
  }
  return { events, next: { ...state, conditions, errorStreaks: streaks } };
}
