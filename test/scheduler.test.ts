/**
 * The scheduler without sleeping: the pure fire-time and catch-up functions, and the timer
 * loop driven by a manual clock (DST changes, no overlap, bounded concurrency, catch-up).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../src/config/load.js";
import { fireTimes, nextFire } from "../src/scheduler/cron-times.js";
import { missedSince, startupDecisions } from "../src/scheduler/due.js";
import { PlanStateStore } from "../src/scheduler/plan-state.js";
import { type PlanConfig, type PlanInput, planSchema } from "../src/scheduler/schedule-config.js";
import {
  type JobOutcome,
  type PlanJob,
  Scheduler,
  type SchedulerEvent,
  type SchedulerOptions,
} from "../src/scheduler/scheduler.js";
import { abortReason, type Clock } from "../src/util/retry.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "attest-sched-"));
  dirs.push(d);
  return d;
};

const BERLIN = "Europe/Berlin";
const iso = (ds: Date[]) => ds.map((d) => d.toISOString().replace(":00.000Z", "Z"));
const plan = (p: Partial<PlanInput> & { name: string; cron: string }): PlanConfig =>
  planSchema.parse({ timezone: "UTC", ...p });

/** A clock that moves only when told to; sleeps resolve in time order as it advances. */
class ManualClock implements Clock {
  #t: number;
  #sleepers: Array<{ at: number; resolve: () => void }> = [];
  constructor(start: string) {
    this.#t = Date.parse(start);
  }
  now(): number {
    return this.#t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortReason(signal));
      const s = { at: this.#t + ms, resolve };
      this.#sleepers.push(s);
      signal?.addEventListener(
        "abort",
        () => {
          this.#sleepers = this.#sleepers.filter((x) => x !== s);
          reject(abortReason(signal));
        },
        { once: true },
      );
    });
  }
  /** Moves to `target`, waking each sleeper at its own time. */
  async advanceTo(target: string | number): Promise<void> {
    const end = typeof target === "number" ? target : Date.parse(target);
    for (;;) {
      await settle();
      this.#sleepers.sort((a, b) => a.at - b.at);
      const next = this.#sleepers[0];
      if (!next || next.at > end) break;
      this.#sleepers.shift();
      this.#t = Math.max(this.#t, next.at);
      next.resolve();
    }
    this.#t = end;
    await settle();
  }
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.#t + ms);
  }
  /** Sets the time without waking anyone (a clock step); the loop notices at its next wake. */
  jumpTo(target: string): void {
    this.#t = Date.parse(target);
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** A scheduler whose runs last until the test finishes them. */
function harness(
  plans: PlanConfig[],
  opts: {
    start: string;
    maxConcurrent?: number;
    state?: PlanStateStore;
    random?: () => number;
    autoFinish?: boolean;
    maxSleepMs?: number;
  },
) {
  const clock = new ManualClock(opts.start);
  const state = opts.state ?? new PlanStateStore(tempDir());
  const started: Array<{ plan: string; slot: string; reason: string; at: string }> = [];
  const pending = new Map<string, (o: JobOutcome) => void>();
  const events: SchedulerEvent[] = [];
  const signals = new Map<string, AbortSignal>();
  let running = 0;
  let maxRunning = 0;
  const perPlan = new Map<string, number>();
  const execute: SchedulerOptions["execute"] = (job: PlanJob, signal) => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    const n = (perPlan.get(job.plan.name) ?? 0) + 1;
    perPlan.set(job.plan.name, n);
    if (n > 1) throw new Error(`plan ${job.plan.name} overlapped itself`);
    started.push({
      plan: job.plan.name,
      slot: job.slot.toISOString(),
      reason: job.reason,
      at: new Date(clock.now()).toISOString(),
    });
    signals.set(job.plan.name, signal);
    return new Promise<JobOutcome>((resolve) => {
      const done = (o: JobOutcome) => {
        running--;
        perPlan.set(job.plan.name, perPlan.get(job.plan.name)! - 1);
        resolve(o);
      };
      if (opts.autoFinish !== false) done({ status: "pass", detail: "ok", aborted: false });
      else pending.set(job.plan.name, done);
    });
  };
  const scheduler = new Scheduler({
    plans,
    execute,
    state,
    clock,
    maxConcurrent: opts.maxConcurrent ?? 1,
    ...(opts.random ? { random: opts.random } : {}),
    // months of simulated time: wake daily, not every minute
    maxSleepMs: opts.maxSleepMs ?? 86_400_000,
    onEvent: (e) => events.push(e),
  });
  return {
    clock,
    state,
    scheduler,
    started,
    events,
    signals,
    maxRunning: () => maxRunning,
    finish: async (name: string, o: Partial<JobOutcome> = {}) => {
      const f = pending.get(name);
      if (!f) throw new Error(`no run of ${name} is pending`);
      pending.delete(name);
      f({ status: "pass", detail: "ok", aborted: false, ...o });
      await settle();
    },
    skipped: () => events.filter((e) => e.type === "skipped"),
  };
}

describe("fire times (pure)", () => {
  it("a daily 08:00 Berlin plan follows the offset change in spring and autumn", () => {
    const s = { cron: "0 8 * * *", timezone: BERLIN };
    expect(iso(fireTimes(s, new Date("2026-03-27T12:00Z"), new Date("2026-03-31T00:00Z")))).toEqual([
      "2026-03-28T07:00Z",
      "2026-03-29T06:00Z",
      "2026-03-30T06:00Z",
    ]);
    expect(iso(fireTimes(s, new Date("2026-10-23T12:00Z"), new Date("2026-10-27T00:00Z")))).toEqual([
      "2026-10-24T06:00Z",
      "2026-10-25T07:00Z",
      "2026-10-26T07:00Z",
    ]);
  });

  it("a fixed time inside the skipped hour runs once, right after the change", () => {
    const s = { cron: "30 2 * * *", timezone: BERLIN };
    expect(iso(fireTimes(s, new Date("2026-03-27T12:00Z"), new Date("2026-03-31T00:00Z")))).toEqual([
      "2026-03-28T01:30Z",
      "2026-03-29T01:00Z", // 03:00 CEST: 02:30 does not exist that night
      "2026-03-30T00:30Z",
    ]);
    const quarter = { cron: "*/15 2 * * *", timezone: BERLIN };
    expect(iso(fireTimes(quarter, new Date("2026-03-29T00:00Z"), new Date("2026-03-29T04:00Z")))).toEqual([
      "2026-03-29T01:00Z",
    ]);
  });

  it("a fixed time inside the repeated hour runs once, the first time", () => {
    const s = { cron: "30 2 * * *", timezone: BERLIN };
    expect(iso(fireTimes(s, new Date("2026-10-23T12:00Z"), new Date("2026-10-27T00:00Z")))).toEqual([
      "2026-10-24T00:30Z",
      "2026-10-25T00:30Z", // 02:30 CEST; not again at 02:30 CET
      "2026-10-26T01:30Z",
    ]);
  });

  it("hourly and minutely plans keep real time: 23 runs on the short day, 25 on the long day", () => {
    const hourly = { cron: "0 * * * *", timezone: BERLIN };
    // local days: 2026-03-29 00:00 CET = 03-28T23:00Z … 2026-03-30 00:00 CEST = 03-29T22:00Z
    expect(fireTimes(hourly, new Date("2026-03-28T22:59Z"), new Date("2026-03-29T21:59Z"))).toHaveLength(23);
    const long = fireTimes(hourly, new Date("2026-10-24T21:59Z"), new Date("2026-10-25T22:59Z"));
    expect(long).toHaveLength(25);
    expect(iso(long.slice(1, 5))).toEqual([
      "2026-10-24T23:00Z",
      "2026-10-25T00:00Z", // 02:00 CEST
      "2026-10-25T01:00Z", // 02:00 CET
      "2026-10-25T02:00Z",
    ]);
    const minutely = { cron: "* * * * *", timezone: BERLIN };
    const across = fireTimes(minutely, new Date("2026-10-25T00:30Z"), new Date("2026-10-25T01:30Z"));
    expect(across).toHaveLength(60);
    expect(across.every((d, i) => i === 0 || d.getTime() - across[i - 1]!.getTime() === 60_000)).toBe(true);
    expect(nextFire(minutely, new Date("2026-10-25T00:58:30Z"))?.toISOString()).toBe(
      "2026-10-25T00:59:00.000Z",
    );
  });

  it("UTC and a weekly plan need no special cases; nicknames work", () => {
    expect(
      iso(
        fireTimes({ cron: "0 8 * * 1", timezone: "UTC" }, new Date("2026-03-01Z"), new Date("2026-03-20Z")),
      ),
    ).toEqual(["2026-03-02T08:00Z", "2026-03-09T08:00Z", "2026-03-16T08:00Z"]);
    expect(nextFire({ cron: "@daily", timezone: BERLIN }, new Date("2026-03-28T12:00Z"))?.toISOString()).toBe(
      "2026-03-28T23:00:00.000Z",
    );
  });
});

describe("catch-up decisions (pure)", () => {
  const weekly = plan({ name: "weekly", cron: "0 8 * * 1", catch_up: "run_once" });
  const now = new Date("2026-03-18T10:00Z"); // a Wednesday

  it("runs once for the latest missed fire time when the previous fire is after the last handled one", () => {
    const states = {
      weekly: { firstSeenAt: "2026-01-01T00:00Z", handledThrough: "2026-03-02T08:00:00.000Z" },
    };
    const d = startupDecisions([weekly], states, now);
    expect(d.run).toEqual([
      { plan: "weekly", slot: new Date("2026-03-16T08:00Z"), reason: "catch_up", folded: 0 },
    ]);
    expect(d.skip).toEqual([]);
  });

  it("does nothing when the previous fire was handled, or the plan is new", () => {
    const handled = {
      weekly: { firstSeenAt: "2026-01-01T00:00Z", handledThrough: "2026-03-16T08:00:00.000Z" },
    };
    expect(startupDecisions([weekly], handled, now).run).toEqual([]);
    expect(startupDecisions([weekly], {}, now)).toEqual({ run: [], skip: [] });
    // first seen after the last fire: nothing was missed
    expect(missedSince(weekly, { firstSeenAt: "2026-03-17T00:00Z" }, now)).toBeUndefined();
  });

  it("with catch_up: skip records the missed fire instead of running it", () => {
    const skip = { ...weekly, catch_up: "skip" as const };
    const d = startupDecisions([skip], { weekly: { firstSeenAt: "2026-01-01T00:00Z" } }, now);
    expect(d.run).toEqual([]);
    expect(d.skip).toMatchObject([{ plan: "weekly", slot: new Date("2026-03-16T08:00Z") }]);
  });
});

describe("scheduler loop (manual clock)", () => {
  it.each([
    ["spring", "2026-03-27T12:00Z", "2026-03-31T00:00Z", ["03-28T01:30", "03-29T01:00", "03-30T00:30"]],
    ["autumn", "2026-10-23T12:00Z", "2026-10-27T00:00Z", ["10-24T00:30", "10-25T00:30", "10-26T01:30"]],
  ])(
    "fires a Berlin 02:30 plan at the right instants through the %s change of 2026",
    async (_, from, to, want) => {
      const h = harness([plan({ name: "night", cron: "30 2 * * *", timezone: BERLIN })], { start: from });
      h.scheduler.start();
      await h.clock.advanceTo(to);
      expect(h.started.map((s) => s.slot.slice(5, 16))).toEqual(want);
      // each run started at its fire time, not later
      expect(h.started.every((s) => s.at === s.slot)).toBe(true);
      await h.scheduler.stop();
    },
  );

  it("fires an hourly Berlin plan 25 times on the long autumn day, at every real hour", async () => {
    const h = harness([plan({ name: "hourly", cron: "0 * * * *", timezone: BERLIN })], {
      start: "2026-10-24T21:59Z",
      maxSleepMs: 60_000,
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-10-25T22:59Z");
    expect(h.started).toHaveLength(25);
    expect(h.started.slice(2, 4).map((s) => s.slot)).toEqual([
      "2026-10-25T00:00:00.000Z",
      "2026-10-25T01:00:00.000Z",
    ]);
    await h.scheduler.stop();
  });

  it("never overlaps a plan with itself: fire times during a run are skipped, then it runs again", async () => {
    const h = harness([plan({ name: "m", cron: "* * * * *" })], {
      start: "2026-05-01T10:00:30Z",
      autoFinish: false,
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-05-01T10:01:00Z");
    expect(h.started).toHaveLength(1);
    await h.clock.advanceTo("2026-05-01T10:03:30Z"); // 10:02 and 10:03 fire while it runs
    expect(h.started).toHaveLength(1);
    expect(h.skipped().map((e) => (e.type === "skipped" ? e.reason : ""))).toEqual([
      "the previous run of plan m is still running",
      "the previous run of plan m is still running",
    ]);
    await h.finish("m");
    await h.clock.advanceTo("2026-05-01T10:04:00Z");
    expect(h.started.map((s) => s.slot)).toEqual(["2026-05-01T10:01:00.000Z", "2026-05-01T10:04:00.000Z"]);
    await h.finish("m");
    await h.scheduler.stop();
  });

  it("bounds runs across plans by max_concurrent_runs and starts queued runs as slots free up", async () => {
    const plans = ["a", "b", "c"].map((name) => plan({ name, cron: "0 * * * *" }));
    const h = harness(plans, { start: "2026-05-01T09:59Z", maxConcurrent: 2, autoFinish: false });
    h.scheduler.start();
    await h.clock.advanceTo("2026-05-01T10:00Z");
    expect(h.started.map((s) => s.plan)).toEqual(["a", "b"]);
    expect(h.scheduler.active().map((r) => `${r.plan}:${r.phase}`)).toEqual([
      "a:running",
      "b:running",
      "c:queued",
    ]);
    await h.finish("b");
    expect(h.started.map((s) => s.plan)).toEqual(["a", "b", "c"]);
    expect(h.maxRunning()).toBe(2);
    await h.finish("a");
    await h.finish("c");
    await h.scheduler.stop();
  });

  it("delays a start within start_window and keeps the plan busy meanwhile", async () => {
    const h = harness([plan({ name: "w", cron: "0 8 * * *", start_window: "30m" })], {
      start: "2026-05-01T07:00Z",
      random: () => 0.5,
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-05-01T08:10Z");
    expect(h.started).toEqual([]);
    expect(h.scheduler.active()).toMatchObject([{ plan: "w", phase: "waiting" }]);
    await h.clock.advanceTo("2026-05-01T08:20Z");
    expect(h.started).toMatchObject([{ slot: "2026-05-01T08:00:00.000Z", at: "2026-05-01T08:15:00.000Z" }]);
    await h.scheduler.stop();
  });

  it("catches up at start from persisted state, once, and remembers what it handled", async () => {
    const dir = tempDir();
    const weekly = plan({ name: "weekly", cron: "0 8 * * 1" });
    // first service: sees the plan on Sunday, runs Monday 08:00, stops
    const first = harness([weekly], { start: "2026-03-01T12:00Z", state: new PlanStateStore(dir) });
    first.scheduler.start();
    await first.clock.advanceTo("2026-03-02T09:00Z");
    expect(first.started.map((s) => s.reason)).toEqual(["cron"]);
    await first.scheduler.stop();
    // down for two Mondays; the next start runs once, for the latest missed fire time
    const second = harness([weekly], { start: "2026-03-18T10:00Z", state: new PlanStateStore(dir) });
    second.scheduler.start();
    await settle();
    expect(second.started).toEqual([
      {
        plan: "weekly",
        slot: "2026-03-16T08:00:00.000Z",
        reason: "catch_up",
        at: "2026-03-18T10:00:00.000Z",
      },
    ]);
    await second.scheduler.stop();
    expect(new PlanStateStore(dir).get("weekly")).toMatchObject({
      handledThrough: "2026-03-16T08:00:00.000Z",
      lastRun: { status: "pass", slot: "2026-03-16T08:00:00.000Z" },
    });
    // restarted again the same day: nothing more to catch up
    const third = harness([weekly], { start: "2026-03-18T11:00Z", state: new PlanStateStore(dir) });
    third.scheduler.start();
    await settle();
    expect(third.started).toEqual([]);
    await third.scheduler.stop();
    // with catch_up: skip, a missed fire is recorded, not run
    const skipping = harness([{ ...weekly, catch_up: "skip" }], {
      start: "2026-03-31T10:00Z",
      state: new PlanStateStore(dir),
    });
    skipping.scheduler.start();
    await settle();
    expect(skipping.started).toEqual([]);
    expect(skipping.skipped()).toMatchObject([{ plan: "weekly", slot: new Date("2026-03-30T08:00Z") }]);
    expect(new PlanStateStore(dir).get("weekly")?.handledThrough).toBe("2026-03-30T08:00:00.000Z");
    await skipping.scheduler.stop();
  });

  it("a run stopped by shutdown is not handled: the next start runs it again", async () => {
    const dir = tempDir();
    const daily = plan({ name: "d", cron: "0 8 * * *" });
    const h = harness([daily], {
      start: "2026-04-01T07:59Z",
      state: new PlanStateStore(dir),
      autoFinish: false,
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-04-01T08:00Z");
    expect(h.started).toHaveLength(1);
    const stopping = h.scheduler.stop();
    h.scheduler.abortRunning(new Error("received SIGTERM"));
    expect(h.signals.get("d")?.aborted).toBe(true);
    await h.finish("d", { status: "error", aborted: true });
    await stopping;
    await h.scheduler.idle();
    expect(new PlanStateStore(dir).get("d")?.handledThrough).toBeUndefined();
    const again = harness([daily], { start: "2026-04-01T08:05Z", state: new PlanStateStore(dir) });
    again.scheduler.start();
    await settle();
    expect(again.started).toMatchObject([{ slot: "2026-04-01T08:00:00.000Z", reason: "catch_up" }]);
    await again.scheduler.stop();
  });

  it("never fires a slot twice when the clock steps back, and folds a forward jump into one run", async () => {
    const h = harness([plan({ name: "h", cron: "0 * * * *" })], {
      start: "2026-05-01T09:30Z",
      maxSleepMs: 60_000,
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-05-01T10:00Z");
    expect(h.started).toHaveLength(1);
    h.clock.jumpTo("2026-05-01T09:40Z"); // NTP step back
    await h.clock.advanceTo("2026-05-01T10:30Z");
    expect(h.started).toHaveLength(1);
    h.clock.jumpTo("2026-05-01T14:30Z"); // host resumed from sleep
    await h.clock.advance(60_000);
    expect(h.started.map((s) => s.slot)).toEqual(["2026-05-01T10:00:00.000Z", "2026-05-01T14:00:00.000Z"]);
    expect(h.events.find((e) => e.type === "due" && e.folded > 0)).toMatchObject({ folded: 3 });
    await h.scheduler.stop();
  });

  it("reschedule (SIGHUP) swaps plans without losing state or the running run", async () => {
    const dir = tempDir();
    const h = harness([plan({ name: "a", cron: "0 * * * *" })], {
      start: "2026-05-01T09:59Z",
      state: new PlanStateStore(dir),
      autoFinish: false,
    });
    h.scheduler.start();
    await h.clock.advanceTo("2026-05-01T10:00Z");
    const firstSeen = h.state.get("a")?.firstSeenAt;
    h.scheduler.reschedule([
      plan({ name: "a", cron: "30 * * * *" }),
      plan({ name: "b", cron: "15 * * * *" }),
    ]);
    expect(h.scheduler.active()).toMatchObject([{ plan: "a", phase: "running" }]);
    expect(h.scheduler.nextRuns().get("a")?.toISOString()).toBe("2026-05-01T10:30:00.000Z");
    await h.finish("a");
    await h.clock.advanceTo("2026-05-01T10:16Z");
    await h.finish("b");
    await h.clock.advanceTo("2026-05-01T10:31Z");
    expect(h.started.map((s) => `${s.plan}@${s.slot.slice(11, 16)}`)).toEqual([
      "a@10:00",
      "b@10:15",
      "a@10:30",
    ]);
    expect(h.state.get("a")?.firstSeenAt).toBe(firstSeen);
    await h.finish("a");
    await h.scheduler.stop();
  });

  it("an executor that throws becomes an error outcome, and the loop goes on", async () => {
    const clock = new ManualClock("2026-05-01T09:59Z");
    const events: SchedulerEvent[] = [];
    let calls = 0;
    const s = new Scheduler({
      plans: [plan({ name: "x", cron: "0 * * * *" })],
      execute: async () => {
        calls++;
        throw new Error("boom");
      },
      state: new PlanStateStore(tempDir()),
      clock,
      maxConcurrent: 1,
      onEvent: (e) => events.push(e),
    });
    s.start();
    await clock.advanceTo("2026-05-01T11:00Z");
    expect(calls).toBe(2);
    expect(events.filter((e) => e.type === "finished")).toMatchObject([
      { outcome: { status: "error", detail: "boom" } },
      { outcome: { status: "error", detail: "boom" } },
    ]);
    await s.stop();
  });
});

describe("schedule and service config", () => {
  const dir = tempDir();
  const base = `sources: [{ name: a, type: dump-dir, path: ${dir} }]`;
  const errorOf = (yaml: string) => {
    try {
      parseConfig(yaml, join(dir, "attest.yml"), {});
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).issues.join("; ");
    }
    throw new Error("expected a config error");
  };

  it("fills defaults", () => {
    const c = parseConfig(`${base}\nschedule: [{ name: w, cron: "0 8 * * 1" }]`, join(dir, "attest.yml"), {});
    expect(c.schedule[0]).toMatchObject({ timezone: "UTC", run: "audit", sources: [], catch_up: "run_once" });
    expect(c.service).toMatchObject({
      listen: "127.0.0.1:9187",
      allow_remote: false,
      max_concurrent_runs: 1,
      shutdown_grace: 60_000,
    });
  });

  it.each([
    [`schedule: [{ name: w, cron: "61 * * * *" }]`, "schedule[0].cron:"],
    [
      `schedule: [{ name: w, cron: "0 8 * * *", timezone: Mars/Olympus }]`,
      'schedule[0].timezone: unknown time zone "Mars/Olympus"',
    ],
    [`schedule: [{ name: w, cron: "0 8 * * *", run: backup }]`, "schedule[0].run:"],
    [
      `schedule: [{ name: w, cron: "0 8 * * *", sources: [nope] }]`,
      'schedule[0].sources[0]: unknown source "nope"',
    ],
    [
      `schedule: [{ name: w, cron: "@daily" }, { name: w, cron: "@hourly" }]`,
      'schedule[1].name: duplicate plan name "w"',
    ],
    [`schedule: [{ name: w, cron: "@daily", start_window: soon }]`, "schedule[0].start_window:"],
    [
      `service: { listen: "0.0.0.0:9187" }`,
      "service.listen: 0.0.0.0:9187 is not a loopback address; set service.allow_remote: true",
    ],
    [`service: { listen: "9187" }`, 'service.listen: "9187" is not HOST:PORT'],
    [`service: { max_concurrent_runs: 0 }`, "service.max_concurrent_runs:"],
  ])("rejects %s", (yaml, message) => {
    expect(errorOf(`${base}\n${yaml}`)).toContain(message);
  });

  it("accepts a remote listen address only with allow_remote, and IPv6 loopback", () => {
    const c = parseConfig(
      `${base}\nservice: { listen: "0.0.0.0:9187", allow_remote: true }`,
      join(dir, "a.yml"),
      {},
    );
    expect(c.service.listen).toBe("0.0.0.0:9187");
    expect(
      parseConfig(`${base}\nservice: { listen: "[::1]:9187" }`, join(dir, "a.yml"), {}).service.listen,
    ).toBe("[::1]:9187");
  });
});
