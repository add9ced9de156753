/**
 * Deciding what to alert: the conditions a run shows, compared with the remembered ones. Pure.
 * New conditions alert at once, ongoing ones again after `repeat_after`, cleared ones resolve.
 */
import type { RunResult, Severity } from "../../model.js";
import { violationKey } from "../../policy/violation-key.js";
import type { AlertCondition, AlertState } from "./alert-state.js";

/** One thing to tell people. */
export interface AlertEvent {
  type: "new" | "repeat" | "resolved";
  condition: AlertCondition;
}

/** What a plan needs besides the run. */
export interface PlanOptions {
  now: Date;
  repeatAfterMs: number;
  minSeverity: Severity;
  resolved: boolean;
  /** Sources this run evaluated: only their conditions can clear. */
  scope: ReadonlySet<string>;
}

/** The conditions a run shows now (without alert bookkeeping). */
export function conditionsOf(
  run: RunResult,
  minSeverity: Severity,
): Array<Omit<AlertCondition, "firstSeen" | "lastAlerted">> {
  const out: Array<Omit<AlertCondition, "firstSeen" | "lastAlerted">> = [];
  for (const v of run.violations) {
    if (minSeverity === "critical" && v.severity !== "critical") continue;
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
  // the last drill of each series decides whether its drill condition holds
  const last = new Map<string, RunResult["drills"][number]>();
  for (const d of run.drills) last.set(`${d.source}/${d.series}`, d);
  for (const [key, d] of last) {
    if (d.verdict !== "fail" && d.verdict !== "error") continue;
    out.push({
      key: `drill:${key}`,
      kind: "drill",
      source: d.source,
      series: d.series,
      severity: "critical",
      message: `restore drill of ${key} ${d.verdict === "fail" ? "FAILED" : "could not verify (ERROR)"} on ${d.backup.id}: ${d.reason}`,
      fingerprint: `${d.verdict}:${d.backup.id}`,
    });
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

/** Compares a run's conditions with the state: the events to send and the next state. */
export function planAlerts(
  run: RunResult,
  state: AlertState,
  opts: PlanOptions,
): { events: AlertEvent[]; next: AlertState } {
  const now = opts.now.toISOString();
  const current = conditionsOf(run, opts.minSeverity);
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

  const drilled = new Set(
    run.drills
      .filter((d) => d.verdict === "pass" || d.verdict === "warn")
      .map((d) => `${d.source}/${d.series}`),
  );
  for (const [key, before] of Object.entries(state.conditions)) {
    if (seen.has(key)) continue;
    // a failed drill clears only when a drill of that series passes; the rest when their source was evaluated
    const cleared =
      before.kind === "drill"
        ? drilled.has(`${before.source}/${before.series}`)
        : opts.scope.has(before.source);
    if (!cleared) {
      conditions[key] = before;
      continue;
    }
    if (opts.resolved) events.push({ type: "resolved", condition: { ...before, lastAlerted: now } });
  }
  return { events, next: { ...state, conditions } };
}
