/**
 * The service loop: a thin timer around the pure decisions of `due.ts`. It sleeps until the
 * next fire time (on an injectable Clock), never overlaps a plan with itself, bounds runs
 * across plans, and turns every failure of a run into an event.
 */

import { describeError } from "../util/errors.js";
import { type Clock, systemClock } from "../util/retry.js";
import { type DueRun, dueBetween, type FireReason, nextRuns, startupDecisions } from "./due.js";
import type { PlanState, PlanStateStore } from "./plan-state.js";
import type { PlanConfig } from "./schedule-config.js";

/** One run of a plan. */
export interface PlanJob {
  plan: PlanConfig;
  /** The fire time this run is for. */
  slot: Date;
  reason: FireReason;
}

/** How a run ended. */
export interface JobOutcome {
  /** pass | warn | fail | error (the run's status) or skipped */
  status: string;
  runId?: string;
  detail: string;
  /** Stopped by shutdown: its fire time counts as not handled (catch-up runs it again). */
  aborted: boolean;
}

/** Runs one job; should not throw (a throw becomes an `error` outcome). */
export type PlanExecutor = (job: PlanJob, signal: AbortSignal) => Promise<JobOutcome>;

/** What the scheduler reports; the service logs it and feeds metrics. */
export type SchedulerEvent =
  | { type: "due"; job: PlanJob; delayMs: number; folded: number }
  | { type: "started"; job: PlanJob }
  | { type: "finished"; job: PlanJob; outcome: JobOutcome; durationMs: number }
  | { type: "skipped"; plan: string; slot: Date; reason: string }
  | { type: "error"; plan?: string; message: string };

/** A plan that has a run waiting, queued or running. */
export interface ActiveRun {
  plan: string;
  slot: string;
  reason: FireReason;
  phase: "waiting" | "queued" | "running";
  startedAt?: string;
}

/** Options of the scheduler. */
export interface SchedulerOptions {
  plans: readonly PlanConfig[];
  execute: PlanExecutor;
  state: PlanStateStore;
  maxConcurrent: number;
  clock?: Clock;
  /** For `start_window` delays; replaceable in tests. */
  random?: () => number;
  onEvent?: (e: SchedulerEvent) => void;
  /** Longest sleep of the loop, so a clock that jumps is noticed (default: a minute). */
  maxSleepMs?: number;
}

interface Entry {
  job: PlanJob;
  phase: ActiveRun["phase"];
  startedAt?: number;
  controller: AbortController;
}

/** Runs the plans of a config on time. */
export class Scheduler {
  readonly #clock: Clock;
  readonly #execute: PlanExecutor;
  readonly #state: PlanStateStore;
  readonly #random: () => number;
  readonly #onEvent: (e: SchedulerEvent) => void;
  readonly #maxSleepMs: number;
  readonly #active = new Map<string, Entry>();
  readonly #queue: Entry[] = [];
  readonly #stopping = new AbortController();
  #plans: PlanConfig[];
  #maxConcurrent: number;
  #next = new Map<string, Date | undefined>();
  #cursor = 0;
  #running = 0;
  #wake = new AbortController();
  #loop: Promise<void> | undefined;
  #idleWaiters: Array<() => void> = [];

  constructor(opts: SchedulerOptions) {
    this.#clock = opts.clock ?? systemClock;
    this.#execute = opts.execute;
    this.#state = opts.state;
    this.#random = opts.random ?? Math.random;
    this.#onEvent = opts.onEvent ?? (() => {});
    this.#plans = [...opts.plans];
    this.#maxConcurrent = opts.maxConcurrent;
    this.#maxSleepMs = opts.maxSleepMs ?? 60_000;
  }

  /** Decides catch-up and start runs, then starts the timer loop. */
  start(): void {
    if (this.#loop) return;
    const now = new Date(this.#clock.now());
    const { run, skip } = startupDecisions(this.#plans, this.#state.all(), now);
    this.#register(now);
    for (const s of skip) {
      this.#emit({ type: "skipped", plan: s.plan, slot: s.slot, reason: s.reason });
      this.#markHandled(s.plan, s.slot);
    }
    this.#cursor = now.getTime();
    for (const d of run) this.#trigger(d);
    this.#recomputeNext();
    this.#loop = this.#runLoop();
  }

  /** Replaces the plans (config reload); plan state and running runs are kept. */
  reschedule(plans: readonly PlanConfig[], maxConcurrent = this.#maxConcurrent): void {
    this.#plans = [...plans];
    this.#maxConcurrent = maxConcurrent;
    this.#register(new Date(this.#clock.now()));
    this.#recomputeNext();
    this.#wake.abort();
    this.#pump();
  }

  /** Stops starting runs: waiting and queued runs are dropped; running ones go on. */
  async stop(): Promise<void> {
    if (this.#stopping.signal.aborted) return;
    this.#stopping.abort(new Error("service stopping"));
    this.#wake.abort();
    for (const e of this.#queue.splice(0)) this.#drop(e, "service stopping before the run started");
    await this.#loop;
  }

  /** Aborts every running run (its drills destroy their sandboxes and record the abort). */
  abortRunning(reason: Error): void {
    for (const e of this.#active.values()) if (e.phase === "running") e.controller.abort(reason);
  }

  /** Resolves when no run is running. */
  idle(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Plans with a run waiting, queued or running. */
  active(): ActiveRun[] {
    return [...this.#active.values()].map((e) => ({
      plan: e.job.plan.name,
      slot: e.job.slot.toISOString(),
      reason: e.job.reason,
      phase: e.phase,
      ...(e.startedAt ? { startedAt: new Date(e.startedAt).toISOString() } : {}),
    }));
  }

  /** The next fire time of every current plan. */
  nextRuns(): ReadonlyMap<string, Date | undefined> {
    return this.#next;
  }

  /** The current plans. */
  plans(): readonly PlanConfig[] {
    return this.#plans;
  }

  async #runLoop(): Promise<void> {
    while (!this.#stopping.signal.aborted) {
      const now = this.#clock.now();
      const times = [...this.#next.values()]
        .filter((d): d is Date => d !== undefined)
        .map((d) => d.getTime());
      const next = times.length ? Math.min(...times) : Number.POSITIVE_INFINITY;
      this.#wake = new AbortController();
      try {
        await this.#clock.sleep(Math.max(0, Math.min(next - now, this.#maxSleepMs)), this.#wake.signal);
      } catch {
        // woken: a reload or stop
      }
      if (this.#stopping.signal.aborted) break;
      this.#tick();
    }
  }

  #tick(): void {
    const now = this.#clock.now();
    // a clock that went back must not fire a slot twice: the cursor never moves back
    if (now > this.#cursor) {
      const due = dueBetween(this.#plans, new Date(this.#cursor), new Date(now));
      this.#cursor = now;
      for (const d of due) this.#trigger(d);
    }
    this.#recomputeNext();
  }

  #recomputeNext(): void {
    this.#next = nextRuns(this.#plans, new Date(Math.max(this.#cursor, this.#clock.now())));
  }

  #trigger(d: DueRun): void {
    const plan = this.#plans.find((p) => p.name === d.plan);
    if (!plan || this.#stopping.signal.aborted) return;
    if (this.#active.has(plan.name)) {
      this.#emit({
        type: "skipped",
        plan: plan.name,
        slot: d.slot,
        reason: `the previous run of plan ${plan.name} is still ${this.#active.get(plan.name)!.phase}`,
      });
      this.#markHandled(plan.name, d.slot);
      return;
    }
    const job: PlanJob = { plan, slot: d.slot, reason: d.reason };
    const delayMs =
      d.reason === "cron" && plan.start_window ? Math.floor(this.#random() * plan.start_window) : 0;
    const entry: Entry = { job, phase: "waiting", controller: new AbortController() };
    this.#active.set(plan.name, entry);
    this.#emit({ type: "due", job, delayMs, folded: d.folded });
    if (delayMs === 0) {
      this.#enqueue(entry);
      return;
    }
    this.#clock.sleep(delayMs, this.#stopping.signal).then(
      () => this.#enqueue(entry),
      () => this.#drop(entry, "service stopping within the start window"),
    );
  }

  #enqueue(entry: Entry): void {
    entry.phase = "queued";
    this.#queue.push(entry);
    this.#pump();
  }

  #drop(entry: Entry, reason: string): void {
    this.#active.delete(entry.job.plan.name);
    // not marked handled: catch-up runs it after the restart
    this.#emit({ type: "skipped", plan: entry.job.plan.name, slot: entry.job.slot, reason });
  }

  #pump(): void {
    while (!this.#stopping.signal.aborted && this.#running < this.#maxConcurrent && this.#queue.length) {
      this.#startRun(this.#queue.shift()!);
    }
  }

  #startRun(entry: Entry): void {
    const { job } = entry;
    entry.phase = "running";
    entry.startedAt = this.#clock.now();
    this.#running++;
    this.#saveState(job.plan.name, (s) => ({
      ...s,
      running: { slot: job.slot.toISOString(), startedAt: new Date(entry.startedAt!).toISOString() },
    }));
    this.#emit({ type: "started", job });
    void this.#execute(job, entry.controller.signal)
      .catch(
        (err: unknown): JobOutcome => ({
          status: "error",
          detail: describeError(err),
          aborted: entry.controller.signal.aborted,
        }),
      )
      .then((outcome) => this.#finish(entry, outcome));
  }

  #finish(entry: Entry, outcome: JobOutcome): void {
    const { job } = entry;
    const finishedAt = this.#clock.now();
    this.#running--;
    this.#active.delete(job.plan.name);
    this.#saveState(job.plan.name, ({ running: _, ...s }) => ({
      ...s,
      ...(outcome.aborted ? {} : { handledThrough: later(s.handledThrough, job.slot) }),
      lastRun: {
        slot: job.slot.toISOString(),
        startedAt: new Date(entry.startedAt ?? finishedAt).toISOString(),
        finishedAt: new Date(finishedAt).toISOString(),
        status: outcome.status,
        detail: outcome.detail,
        ...(outcome.runId ? { runId: outcome.runId } : {}),
      },
    }));
    this.#emit({ type: "finished", job, outcome, durationMs: finishedAt - (entry.startedAt ?? finishedAt) });
    this.#pump();
    if (this.#running === 0) for (const w of this.#idleWaiters.splice(0)) w();
  }

  #register(now: Date): void {
    for (const p of this.#plans) {
      if (!this.#state.get(p.name)) this.#saveState(p.name, () => ({ firstSeenAt: now.toISOString() }));
    }
  }

  #markHandled(plan: string, slot: Date): void {
    this.#saveState(plan, (s) => ({ ...s, handledThrough: later(s.handledThrough, slot) }));
  }

  #saveState(plan: string, change: (s: PlanState) => PlanState): void {
    try {
      this.#state.update(plan, (s) =>
        change(s ?? { firstSeenAt: new Date(this.#clock.now()).toISOString() }),
      );
    } catch (err) {
      this.#emit({ type: "error", plan, message: `cannot save plan state: ${describeError(err)}` });
    }
  }

  #emit(e: SchedulerEvent): void {
    try {
      this.#onEvent(e);
    } catch {
      // a listener's failure must not stop the loop
    }
  }
}

function later(a: string | undefined, b: Date): string {
  return a && Date.parse(a) > b.getTime() ? a : b.toISOString();
}
