/**
 * `attest serve`: the scheduler, the HTTP endpoint and metrics put together, with graceful
 * shutdown (SIGTERM/SIGINT) and configuration reload (SIGHUP).
 */
import { loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { HistoryStore } from "../history/history-store.js";
import { createRuntime, type ManagedRuntime } from "../runtimes/registry.js";
import { createPlanRunner } from "../scheduler/plan-runner.js";
import { PlanStateStore } from "../scheduler/plan-state.js";
import { parseListen } from "../scheduler/schedule-config.js";
import { type PlanJob, Scheduler, type SchedulerEvent } from "../scheduler/scheduler.js";
import { formatDuration } from "../util/duration.js";
import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { startHttpEndpoint } from "./http-server.js";
import { ServiceMetrics } from "./metrics.js";
import { recentRuns } from "./recent-runs.js";

/** Exit codes of `attest serve`. */
export const SERVE_EXIT = { clean: 0, forced: 1 } as const;

/** A running service. */
export interface RunningService {
  /** The endpoint's base URL. */
  readonly url: string;
  /** Resolves with the exit code once the service has stopped. */
  readonly stopped: Promise<number>;
  /** Stops: no new runs, running drills aborted, forced past `service.shutdown_grace`. */
  shutdown(reason: string): Promise<number>;
  /** A second signal: destroys live sandboxes at once and resolves `stopped` with the forced code. */
  forceStop(reason: string): Promise<number>;
  /** Re-reads the config file; on error keeps the running configuration. */
  reload(): boolean;
}

/** Starts the service; resolves once it listens and the plans are scheduled. */
export async function startService(initial: Config, logger: Logger): Promise<RunningService> {
  let config = initial;
  const startedAt = new Date();
  const live = new Map<PlanJob, ManagedRuntime>();

  await sweepLeftovers(config, logger);
  const state = new PlanStateStore(config.service.state_dir ?? config.reports.dir);
  let scheduler: Scheduler | undefined;
  // the outcome of the last SIGHUP, on /healthz: a reload is an event a caller can wait for
  let lastReload: { at: string; ok: boolean; error?: string } | null = null;
  const metrics = new ServiceMetrics({
    nextRuns: () => scheduler?.nextRuns() ?? new Map(),
    historyFile: () => config.history.csv,
  });
  seedMetrics(metrics, config, logger);

  const runner = createPlanRunner({
    config: () => config,
    logger,
    onRun: (run, sources) => metrics.observeRun(run, sources),
    onRuntime: (runtime, job) => live.set(job, runtime),
  });
  const sched = new Scheduler({
    plans: config.schedule,
    execute: runner,
    state,
    maxConcurrent: config.service.max_concurrent_runs,
    onEvent: (e) => {
      if (e.type === "finished") live.delete(e.job);
      onSchedulerEvent(e, logger, metrics);
    },
  });
  scheduler = sched;

  let stopping = false;
  const http = await startHttpEndpoint(
    parseListen(config.service.listen)!,
    {
      health: () => ({ ok: !stopping, body: health() }),
      metrics: () => metrics.text(),
      runs: (limit) => recentRuns(config.reports.dir, limit),
    },
    logger,
  );

  function health() {
    const all = state.all();
    const plans = sched.plans().map((p) => ({
      name: p.name,
      run: p.run,
      cron: p.cron,
      timezone: p.timezone,
      next: sched.nextRuns().get(p.name)?.toISOString() ?? null,
      lastRun: all[p.name]?.lastRun ?? null,
    }));
    const finished = Object.entries(all)
      .flatMap(([plan, s]) => (s.lastRun ? [{ plan, ...s.lastRun }] : []))
      .sort((a, b) => (a.finishedAt < b.finishedAt ? 1 : -1));
    return {
      up: !stopping,
      status: stopping ? "stopping" : "ok",
      pid: process.pid,
      startedAt: startedAt.toISOString(),
      config: config.file,
      running: sched.active(),
      plans,
      lastRun: finished[0] ?? null,
      lastReload,
    };
  }

  sched.start();
  logger.info(`attest serve listening on ${http.url}`, {
    plans: config.schedule.map((p) => p.name).join(",") || "none",
    state: state.path,
  });
  if (config.schedule.length === 0) logger.warn("no schedule: plans in the config; only the endpoint runs");

  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((r) => {
    resolveStopped = r;
  });
  let shutdownPromise: Promise<number> | undefined;

  const shutdown = (reason: string): Promise<number> => {
    shutdownPromise ??= (async () => {
      stopping = true;
      const grace = config.service.shutdown_grace;
      logger.warn(`${reason}: stopping; running drills are aborted (grace ${formatDuration(grace)})`, {
        running: sched.active().length,
      });
      await sched.stop();
      sched.abortRunning(new Error(reason));
      let timer: NodeJS.Timeout | undefined;
      const inTime = await Promise.race([
        sched.idle().then(() => true),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), grace);
        }),
      ]);
      clearTimeout(timer);
      let code: number = SERVE_EXIT.clean;
      if (!inTime) {
        logger.error(`runs did not stop within ${formatDuration(grace)}: destroying their sandboxes`);
        await destroyLive(live, logger);
        code = SERVE_EXIT.forced;
      }
      await http.close();
      logger.info("attest serve stopped", { exitCode: code });
      resolveStopped(code);
      return code;
    })();
    return shutdownPromise;
  };

  const reload = (): boolean => {
    let next: Config;
    try {
      next = loadConfig(config.file);
    } catch (err) {
      logger.error("reload failed; keeping the running configuration", { error: describeError(err) });
      lastReload = { at: new Date().toISOString(), ok: false, error: describeError(err) };
      return false;
    }
    if (next.service.listen !== config.service.listen)
      logger.warn("service.listen changed: restart the service to apply it");
    if ((next.service.state_dir ?? next.reports.dir) !== (config.service.state_dir ?? config.reports.dir))
      logger.warn("the plan state location changed: restart the service to apply it");
    config = next;
    sched.reschedule(next.schedule, next.service.max_concurrent_runs);
    logger.info("configuration reloaded", { plans: next.schedule.map((p) => p.name).join(",") || "none" });
    lastReload = { at: new Date().toISOString(), ok: true };
    return true;
  };

  const forceStop = async (reason: string): Promise<number> => {
    stopping = true;
    logger.warn(`${reason}: destroying sandboxes now`);
    void sched.stop();
    sched.abortRunning(new Error(reason));
    await destroyLive(live, logger);
    resolveStopped(SERVE_EXIT.forced);
    return SERVE_EXIT.forced;
  };

  return { url: http.url, stopped, shutdown, forceStop, reload };
}

async function destroyLive(runtimes: ReadonlyMap<PlanJob, ManagedRuntime>, logger: Logger): Promise<void> {
  await Promise.allSettled(
    [...runtimes.values()].map((r) =>
      r
        .destroyAll()
        .catch((err: unknown) => logger.error("destroying sandboxes failed", { error: describeError(err) })),
    ),
  );
}

/** Removes sandboxes of runs whose process is gone (a SIGKILLed earlier service or CLI run). */
async function sweepLeftovers(config: Config, logger: Logger): Promise<void> {
  try {
    const runtime = await createRuntime(config, logger);
    const swept = await runtime.sweep();
    if (swept.removed.length)
      logger.info("swept leftovers of earlier runs", { removed: swept.removed.length });
  } catch (err) {
    logger.warn("could not sweep leftovers at start", { error: describeError(err) });
  }
}

/** Fills the gauges from the history file, so a restart keeps the values. */
function seedMetrics(metrics: ServiceMetrics, config: Config, logger: Logger): void {
  try {
    metrics.observeRecords(new HistoryStore(config.history.csv).read());
  } catch (err) {
    logger.warn("metrics start empty: cannot read the history file", { error: describeError(err) });
  }
}

function onSchedulerEvent(e: SchedulerEvent, logger: Logger, metrics: ServiceMetrics): void {
  switch (e.type) {
    case "due":
      logger.info(`plan ${e.job.plan.name} due`, {
        slot: e.job.slot.toISOString(),
        reason: e.job.reason,
        ...(e.delayMs ? { startIn: formatDuration(e.delayMs) } : {}),
        ...(e.folded ? { foldedFireTimes: e.folded } : {}),
      });
      return;
    case "started":
      logger.info(`plan ${e.job.plan.name} started`, { run: e.job.plan.run, slot: e.job.slot.toISOString() });
      return;
    case "finished": {
      const { outcome } = e;
      metrics.countRun(e.job.plan.run, outcome.status);
      const level = outcome.status === "pass" || outcome.status === "warn" ? "info" : "warn";
      logger.log(level, `plan ${e.job.plan.name} finished`, {
        status: outcome.status,
        ...(outcome.runId ? { runId: outcome.runId } : {}),
        detail: outcome.detail,
        duration: formatDuration(e.durationMs),
        ...(outcome.aborted ? { aborted: true } : {}),
      });
      return;
    }
    case "skipped":
      logger.warn(`plan ${e.plan} skipped`, { slot: e.slot.toISOString(), reason: e.reason });
      return;
    case "error":
      logger.error(e.message, e.plan ? { plan: e.plan } : {});
  }
}
