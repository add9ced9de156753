/** The scheduler's decisions as pure functions of plans, remembered state and time. */
import { fireTimes, lastFireAtOrBefore, nextFire } from "./cron-times.js";
import type { PlanState } from "./plan-state.js";
import type { PlanConfig } from "./schedule-config.js";

/** Why a plan runs. */
export const FIRE_REASONS = ["cron", "catch_up", "run_at_start"] as const;
/** A reason to run. */
export type FireReason = (typeof FIRE_REASONS)[number];

/** A run the scheduler should start: which plan, for which fire time, and why. */
export interface DueRun {
  plan: string;
  slot: Date;
  reason: FireReason;
  /** Earlier fire times in the same window that are folded into this run. */
  folded: number;
}

/** A missed fire time that is not run (`catch_up: skip`). */
export interface SkippedRun {
  plan: string;
  slot: Date;
  reason: string;
}

const toSchedule = (p: PlanConfig) => ({ cron: p.cron, timezone: p.timezone });

/**
 * The runs due in (from, to], earliest first. A plan that fired several times in the window
 * (the host slept, the clock jumped) runs once, for its latest fire time.
 */
export function dueBetween(plans: readonly PlanConfig[], from: Date, to: Date): DueRun[] {
  const out: DueRun[] = [];
  for (const p of plans) {
    const fires = fireTimes(toSchedule(p), from, to);
    const last = fires.at(-1);
    if (last) out.push({ plan: p.name, slot: last, reason: "cron", folded: fires.length - 1 });
  }
  return out.sort((a, b) => a.slot.getTime() - b.slot.getTime() || a.plan.localeCompare(b.plan));
}

/** The next fire time of every plan after `after`. */
export function nextRuns(plans: readonly PlanConfig[], after: Date): Map<string, Date | undefined> {
  return new Map(plans.map((p) => [p.name, nextFire(toSchedule(p), after)]));
}

/**
 * What to do when the service starts: `run_at_start` plans run now; a plan whose previous
 * fire time lies after the last one it handled missed a run while the service was down, and
 * runs once now (`catch_up: run_once`, for the latest missed fire time) or records the skip.
 */
export function startupDecisions(
  plans: readonly PlanConfig[],
  states: Readonly<Record<string, PlanState | undefined>>,
  now: Date,
): { run: DueRun[]; skip: SkippedRun[] } {
  const run: DueRun[] = [];
  const skip: SkippedRun[] = [];
  for (const p of plans) {
    const missed = missedSince(p, states[p.name], now);
    if (p.run_at_start) {
      run.push({ plan: p.name, slot: now, reason: "run_at_start", folded: missed ? 1 : 0 });
      continue;
    }
    if (!missed) continue;
    if (p.catch_up === "run_once") run.push({ plan: p.name, slot: missed, reason: "catch_up", folded: 0 });
    else
      skip.push({
        plan: p.name,
        slot: missed,
        reason: `missed while the service was down (catch_up: skip)`,
      });
  }
  return { run, skip };
}

/** The latest fire time in (handledThrough or firstSeenAt, now], when there is one. */
export function missedSince(plan: PlanConfig, state: PlanState | undefined, now: Date): Date | undefined {
  const ref = state?.handledThrough ?? state?.firstSeenAt;
  if (!ref) return undefined;
  const from = new Date(ref);
  const first = nextFire(toSchedule(plan), from);
  if (!first || first > now) return undefined;
  return lastFireAtOrBefore(toSchedule(plan), now, from);
}
