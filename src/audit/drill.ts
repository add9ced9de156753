/**
 * One drill as named steps: preflight → prepare → provision → restore → checks → teardown.
 * Every step is timed, whatever a step acquires goes on one last-in-first-out cleanup list,
 * and the verdict follows from a reason code (drill-outcome.ts), decided in one place.
 */

import type { CheckContext } from "../checks/check.js";
import { runChecks } from "../checks/registry.js";
import type { SourceConfig } from "../config/schema.js";
import {
  type CheckResult,
  type DrillPlan,
  type DrillResult,
  type DrillTimings,
  detailOf,
  type Inventory,
} from "../model.js";
import { guardCatalog } from "../restore/catalog-guard.js";
import type { RestoreOutcome, Restorer } from "../restore/restorer.js";
import type { Runtime, Sandbox } from "../runtimes/runtime.js";
import { withClient } from "../runtimes/sql.js";
import type { PreparedBackup, PrepareRecord, Source } from "../sources/source.js";
import { formatDuration } from "../util/duration.js";
import { Cleanups, describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { abortReason } from "../util/retry.js";
import {
  classifyDrillFailure,
  type DrillEnd,
  type DrillPhase,
  type DrillStop,
  endOfChecks,
  verdictOf,
} from "./drill-outcome.js";
import { type StopPoint, stopPointFromEnv } from "./stop-points.js";

export { diskFull, verdictOfChecks } from "./drill-outcome.js";

/** What a drill needs. */
export interface DrillDeps {
  runId: string;
  runtime: Runtime;
  source: SourceConfig;
  logger: Logger;
  signal: AbortSignal;
  timeoutMs: number;
  previousInventory?: Inventory;
  /** The source's adapter: it picks the restorer; its `prepare` (clone, attach, mount) runs before provisioning. */
  sourceAdapter: Source;
  /** Called at each boundary (a phase name or `check:<name>`); tests stop the drill there. */
  stopPoint?: StopPoint;
}

/** A drill's result plus what only the evidence file keeps. */
export interface DrillOutput {
  result: DrillResult;
  inventory?: Inventory;
}

/** What the steps of one drill share. */
interface DrillState {
  readonly plan: DrillPlan;
  readonly deps: DrillDeps;
  readonly signal: AbortSignal;
  readonly started: Date;
  readonly startedMs: number;
  readonly cleanups: Cleanups;
  readonly timings: DrillTimings;
  readonly notes: string[];
  readonly prepareRecord: PrepareRecord;
  phase: DrillPhase;
  /** When the current phase began (progress lines show the phase's own time, not the drill's). */
  phaseStartedMs: number;
  /** What the current phase is doing, repeated by the ticker. */
  activity: string;
  major: number;
  restorer?: Restorer;
  prepared?: PreparedBackup;
  sandbox?: Sandbox;
  restored?: RestoreOutcome;
  checks: CheckResult[];
  inventory?: Inventory;
  newestData?: string;
  progress(text: string): void;
  deadline(): number;
}

/** Runs one drill. Never throws: every outcome is a DrillResult. */
export async function runDrill(plan: DrillPlan, deps: DrillDeps): Promise<DrillOutput> {
  const { logger } = deps;
  const b = plan.backup;
  const key = `${deps.source.name}/${b.series}`;

  // the first stop wins: the caller's abort (shutdown, Ctrl-C) or the drill's own deadline
  let stop: DrillStop | undefined;
  const stopper = new AbortController();
  const halt = (s: DrillStop, reason: Error) => {
    if (stop) return;
    stop = s;
    stopper.abort(reason);
  };
  const onAbort = () =>
    halt({ kind: "aborted", why: describeError(deps.signal.reason) }, abortReason(deps.signal));
  if (deps.signal.aborted) onAbort();
  else deps.signal.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(
    () =>
      halt(
        { kind: "timed-out", afterMs: deps.timeoutMs },
        new Error(`drill timed out after ${formatDuration(deps.timeoutMs)}`),
      ),
    deps.timeoutMs,
  );
  timer.unref();

  const startedMs = Date.now();
  const st: DrillState = {
    plan,
    deps,
    signal: stopper.signal,
    started: new Date(startedMs),
    startedMs,
    cleanups: new Cleanups(),
    timings: {
      preflightMs: 0,
      provisionMs: 0,
      restoreMs: 0,
      recoveryMs: 0,
      checksMs: 0,
      teardownMs: 0,
      totalMs: 0,
    },
    notes: [],
    prepareRecord: { phases: {}, resources: [] },
    phase: "preflight",
    phaseStartedMs: startedMs,
    activity: "",
    major: b.pgMajor ?? 0,
    checks: [],
    progress: (text) => {
      st.activity = text;
      logger.progress(key, progressLine(st));
    },
    deadline: () => Math.max(1000, deps.timeoutMs - (Date.now() - startedMs)),
  };
  const ticker = setInterval(() => logger.progress(key, progressLine(st)), 1000);
  ticker.unref();
  // waits on the drill's own signal: a stop point holds until a signal or the deadline stops it
  const stopPoint = deps.stopPoint ?? stopPointFromEnv(stopper.signal);
  const enter = async (phase: DrillPhase) => {
    st.phase = phase;
    st.phaseStartedMs = Date.now();
    st.activity = "";
    await stopPoint?.(phase);
    if (st.signal.aborted) throw abortReason(st.signal);
  };

  logger.info("drill started", {
    source: deps.source.name,
    backup: b.id,
    format: b.format,
    reason: plan.reason,
  });
  let end: DrillEnd;
  try {
    await enter("preflight");
    // the preflight (a plain dump's hostile-content scan can take long) is no part of provisioning
    await timed(st, "preflightMs", () => preflight(st));
    if (deps.sourceAdapter.prepare) {
      await enter("prepare");
      await timed(st, "provisionMs", () => prepare(st, deps.sourceAdapter));
    }
    await enter("provision");
    await timed(st, "provisionMs", () => provision(st));
    await enter("restore");
    await timed(st, "restoreMs", () => restore(st));
    await enter("checks");
    await timed(st, "checksMs", () => check(st, stopPoint));
    // a check that failed because the drill was stopped (the server went away) proves nothing
    end = stop ? classifyDrillFailure(undefined, "checks", stop) : endOfChecks(st.checks);
  } catch (err) {
    end = classifyDrillFailure(err, st.phase, stop);
    if (st.sandbox) {
      const tail = await st.sandbox.logTail(5).catch(() => "");
      if (tail.trim()) logger.debug("sandbox server log tail", { tail });
    }
  } finally {
    clearInterval(ticker);
    clearTimeout(timer);
    deps.signal.removeEventListener("abort", onAbort);
  }
  end = await teardown(st, end, stopPoint);
  st.timings.totalMs = Date.now() - startedMs;
  logger.done(key);
  const verdict = verdictOf(end);
  const result = resultOf(st, verdict, end);
  logger.info("drill finished", {
    source: deps.source.name,
    backup: b.id,
    verdict,
    reason: end.reason,
    outcome: end.outcome,
    totalMs: st.timings.totalMs,
  });
  return { result, ...(st.inventory ? { inventory: st.inventory } : {}) };
}

/** Runs a step and adds its duration to a timing, also when it throws. */
async function timed(st: DrillState, field: keyof DrillTimings, step: () => Promise<void>): Promise<void> {
  const t0 = Date.now();
  try {
    await step();
  } finally {
    st.timings[field] = (st.timings[field] ?? 0) + Date.now() - t0;
  }
}

/** "preflight 4s · scanning dump": the phase, how long it has run, and what it is doing. */
function progressLine(st: DrillState): string {
  const line = `${st.phase} ${formatDuration(Date.now() - st.phaseStartedMs)}`;
  return st.activity ? `${line} · ${st.activity}` : line;
}

/** Picks the restorer and the PostgreSQL major; lets the restorer refuse early. */
async function preflight(st: DrillState): Promise<void> {
  const b = st.plan.backup;
  st.progress(
    b.family !== "logical"
      ? "checking the backup"
      : b.format.startsWith("plain")
        ? "scanning dump"
        : "reading the archive's table of contents",
  );
  st.restorer = st.deps.sourceAdapter.restorer(b);
  const dumpMajor = detailOf(b, "dump")?.dumpMajor ?? 0;
  // an archive written by a newer pg_dump needs a pg_restore at least that new
  if (b.family === "logical" && dumpMajor > st.major) st.major = dumpMajor;
  await st.restorer.preflight?.(st.plan, st.signal);
}

/** The source's own preparation (clone, attach, mount); released after the sandbox. */
async function prepare(st: DrillState, source: Source): Promise<void> {
  st.progress("preparing the backup (clone, attach, mount)");
  const prepared = await source.prepare!(st.plan, {
    runId: st.deps.runId,
    logger: st.deps.logger,
    signal: st.signal,
    record: st.prepareRecord,
  });
  st.prepared = prepared;
  st.cleanups.add("release of the prepared backup", async () => {
    const released = await prepared.dispose();
    Object.assign(st.prepareRecord.phases, released.phases);
  });
  if (prepared.pgMajor) st.major = prepared.pgMajor;
  st.notes.push(...prepared.notes);
}

/** Creates the sandbox; its destruction goes on the cleanup list. */
async function provision(st: DrillState): Promise<void> {
  const { plan, deps, prepared, restorer } = st;
  const b = plan.backup;
  st.progress("provisioning sandbox");
  const sandbox = await deps.runtime.provision(
    {
      pgMajor: st.major,
      allowNewer: b.family === "logical",
      labels: { run: deps.runId, source: deps.source.name, backup: b.id },
      // a prepared data directory is the sandbox's own; prepared files are read like any backup
      mode: prepared && "dataDir" in prepared ? "empty" : restorer!.sandboxMode,
      inputs: [
        ...(restorer!.inputs?.(plan) ?? [b.location]),
        ...(prepared && "files" in prepared ? prepared.files : []),
      ].map((hostPath) => ({ hostPath })),
      ...(prepared && "dataDir" in prepared ? { dataDir: prepared.dataDir } : {}),
    },
    st.signal,
  );
  st.sandbox = sandbox;
  st.cleanups.add("sandbox", () => sandbox.destroy());
  st.notes.push(...(sandbox.notes ?? []));
  if (b.pgMajor && sandbox.pgMajor !== b.pgMajor)
    st.notes.push(`restored a PostgreSQL ${b.pgMajor} backup into a PostgreSQL ${sandbox.pgMajor} sandbox`);
}

/** Restores the backup into the sandbox; recovery time is kept apart from restore time. */
async function restore(st: DrillState): Promise<void> {
  const t0 = Date.now();
  try {
    st.restored = await st.restorer!.restore(st.sandbox!, {
      plan: st.plan,
      logger: st.deps.logger,
      signal: st.signal,
      timeoutMs: st.deadline(),
      progress: st.progress,
    });
    st.timings.recoveryMs = st.restored.recoveryMs ?? 0;
    st.notes.push(...st.restored.notes);
    // the checks query these databases next: a catalog that shadows built-ins ends the drill here
    for (const db of new Set(["postgres", ...st.restored.databases]))
      await withClient(st.sandbox!, db, (c) => guardCatalog(c, db, st.sandbox!.pgMajor));
  } finally {
    // `timed` adds the whole step to restoreMs; the recovery part is reported on its own
    st.timings.restoreMs -= Math.min(st.timings.recoveryMs, Date.now() - t0);
  }
}

/** Runs the checks; each check is a record, never an exception. */
async function check(st: DrillState, stopPoint: StopPoint | undefined): Promise<void> {
  const ctx: CheckContext = {
    sandbox: st.sandbox!,
    plan: st.plan,
    restored: st.restored!,
    config: st.deps.source.checks,
    shared: {},
    drillStartedAt: st.started,
    logger: st.deps.logger,
    signal: st.signal,
    timeoutMs: st.deadline(),
    ...(st.deps.previousInventory ? { previousInventory: st.deps.previousInventory } : {}),
    ...(stopPoint ? { beforeCheck: (name: string) => stopPoint(`check:${name}`) } : {}),
  };
  st.checks = await runChecks(ctx);
  st.inventory = ctx.shared.inventory;
  st.newestData = ctx.shared.newestData;
}

/**
 * Runs the cleanup list (newest first). It runs after a stop too, without the drill's
 * signal: a sandbox is destroyed however the drill ended. A failed cleanup turns only a
 * pass or warn into error; it cannot make a backup look bad.
 */
async function teardown(st: DrillState, end: DrillEnd, stopPoint: StopPoint | undefined): Promise<DrillEnd> {
  st.phase = "teardown";
  const t0 = Date.now();
  try {
    // the drill's own signal is no longer heard here (cleanups run whatever happens): a stop
    // at teardown is the run's signal
    await stopPoint?.("teardown", st.deps.signal);
  } catch (err) {
    st.notes.push(`stop point before teardown: ${describeError(err)}`);
  }
  try {
    await st.cleanups.run();
  } catch (err) {
    st.notes.push(`teardown failed: ${describeError(err)}`);
    if (verdictOf(end) === "pass" || verdictOf(end) === "warn")
      end = { outcome: "teardown-failed", reason: `teardown failed: ${describeError(err)}` };
  }
  st.timings.teardownMs = Date.now() - t0;
  return end;
}

/** The drill's record. */
function resultOf(st: DrillState, verdict: DrillResult["verdict"], end: DrillEnd): DrillResult {
  const { plan, deps, sandbox, restored, newestData } = st;
  const b = plan.backup;
  return {
    source: deps.source.name,
    series: b.series,
    backup: {
      id: b.id,
      family: b.family,
      format: b.format,
      createdAt: b.createdAt,
      sizeBytes: b.sizeBytes,
      location: b.location,
      ...(b.pgMajor ? { pgMajor: b.pgMajor } : {}),
    },
    runtime: deps.runtime.name,
    ...(sandbox ? { sandboxMajor: sandbox.pgMajor } : {}),
    ...(sandbox?.confinement ? { confinement: sandbox.confinement } : {}),
    ...(plan.target ? { target: plan.target } : {}),
    verdict,
    reason: verdict === "pass" && !end.reason ? "restored and verified" : end.reason,
    outcome: end.outcome,
    timings: st.timings,
    ...(restored?.reached ? { reached: restored.reached } : {}),
    checks: st.checks,
    ...(deps.sourceAdapter.prepare
      ? { phases: st.prepareRecord.phases, resources: st.prepareRecord.resources }
      : {}),
    ...(newestData
      ? {
          newestData,
          measuredRpoSeconds: Math.max(0, Math.round((st.started.getTime() - Date.parse(newestData)) / 1000)),
        }
      : {}),
    notes: st.notes,
  };
}
