/**
 * What a scheduled plan does: `audit` calls the orchestrator in this process; `check` and
 * `report` run the CLI command of that name (its documented contract), so the service gets
 * whatever those commands do in this build. Every run holds the run lock; every failure is
 * an outcome, never an exception.
 */
import { fileURLToPath } from "node:url";
import { LIST_ABORTED } from "../audit/aborted-listing.js";
import { runAudit } from "../audit/run-audit.js";
import { makeRunId } from "../audit/run-status.js";
import type { Config } from "../config/schema.js";
import type { RunResult } from "../model.js";
import type { ManagedRuntime } from "../runtimes/registry.js";
import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { runProcess } from "../util/process.js";
import { abortReason } from "../util/retry.js";
import { INHERITED_LOCK_ENV, LockBusyError, lockLeaseOf, runLockPath, withRunLock } from "./run-lock.js";
import type { JobOutcome, PlanExecutor, PlanJob } from "./scheduler.js";

/** What the runner needs from the service. */
export interface PlanRunnerDeps {
  /** The current configuration (a reload changes it between runs). */
  config(): Config;
  logger: Logger;
  /** A finished run's document and the sources it evaluated (metrics). */
  onRun(run: RunResult, sources: readonly string[]): void;
  /** A runtime in use by a running audit, and its end (forced shutdown destroys what is live). */
  onRuntime(runtime: ManagedRuntime, job: PlanJob): void;
}

const CLI = fileURLToPath(new URL("../cli/main.js", import.meta.url));

/** Creates the executor the scheduler calls. */
export function createPlanRunner(deps: PlanRunnerDeps): PlanExecutor {
  return async (job, signal) => {
    const config = deps.config();
    const runId = makeRunId(new Date());
    // another run owns the history once our lease was taken over: stop rather than interleave
    const lost = new AbortController();
    const runSignal = AbortSignal.any([signal, lost.signal]);
    const lockOpts = {
      waitMs: config.service.lock_wait,
      signal,
      logger: deps.logger,
      hint: `plan ${job.plan.name} runs again at its next fire time`,
      ...lockLeaseOf(config),
      onLost: (err: Error) => lost.abort(err),
    };
    try {
      return await withRunLock(runLockPath(config), { runId, kind: job.plan.run }, lockOpts, (lock) =>
        job.plan.run === "audit"
          ? auditPlan(job, config, runId, runSignal, deps)
          : commandPlan(job, config, runSignal, deps, lock.path, lock.owner.runId),
      );
    } catch (err) {
      if (err instanceof LockBusyError) return { status: "skipped", detail: err.message, aborted: false };
      if (signal.aborted)
        return {
          status: "error",
          detail: `stopped before it ran: ${describeError(signal.reason)}`,
          aborted: true,
        };
      return { status: "error", detail: describeError(err), aborted: false };
    }
  };
}

async function auditPlan(
  job: PlanJob,
  config: Config,
  runId: string,
  signal: AbortSignal,
  deps: PlanRunnerDeps,
): Promise<JobOutcome> {
  const run = await runAudit({
    config,
    kind: "audit",
    sources: job.plan.sources,
    label: `plan ${job.plan.name}`,
    mail: true,
    logger: deps.logger,
    signal,
    runId,
    onRuntime: (r) => deps.onRuntime(r, job),
  });
  deps.onRun(run, sourcesOf(job, config));
  // a run stopped while listing has no drills to count: say where it stopped instead
  const stoppedListing = run.findings?.find((f) => f.kind === LIST_ABORTED);
  return {
    status: run.status,
    runId: run.run.id,
    detail: stoppedListing?.message ?? `${run.drills.length} drill(s), ${run.violations.length} violation(s)`,
    aborted: signal.aborted,
  };
}

/** The sources a plan's run covers. */
function sourcesOf(job: PlanJob, config: Config): string[] {
  return job.plan.sources.length ? [...job.plan.sources] : config.sources.map((s) => s.name);
}

/** Runs `attest check|report … --json` and reads its document. */
async function commandPlan(
  job: PlanJob,
  config: Config,
  signal: AbortSignal,
  deps: PlanRunnerDeps,
  lockPath: string,
  lockRunId: string,
): Promise<JobOutcome> {
  const args = [CLI, job.plan.run, "--config", config.file, "--json"];
  if (job.plan.run === "check") for (const s of job.plan.sources) args.push("--source", s);
  if (job.plan.run === "report") {
    const to = job.slot;
    const from = new Date(to.getTime() - job.plan.period);
    args.push("--from", from.toISOString(), "--to", to.toISOString());
  }
  const r = await runProcess(process.execPath, args, {
    timeoutMs: config.sandbox.timeout,
    signal,
    allowFailure: true,
    env: { ...process.env, [INHERITED_LOCK_ENV]: JSON.stringify({ path: lockPath, runId: lockRunId }) },
    onStderrLine: (line) => process.stderr.write(`${line}\n`),
  });
  if (signal.aborted) throw abortReason(signal);
  if (r.code === 2 && /unknown command/i.test(r.stderrTail))
    return {
      status: "error",
      detail: `attest ${job.plan.run} is not available in this build`,
      aborted: false,
    };
  let doc: Partial<RunResult> & { status?: string };
  try {
    doc = JSON.parse(r.stdout) as typeof doc;
  } catch {
    const why = r.timedOut ? "timed out" : `exited ${r.code ?? r.signal}`;
    return {
      status: "error",
      detail: `attest ${job.plan.run} ${why} without a JSON document: ${r.stderrTail.split("\n").at(-1) ?? ""}`,
      aborted: false,
    };
  }
  if (job.plan.run === "check" && doc.run && doc.drills && doc.violations)
    deps.onRun(doc as RunResult, sourcesOf(job, config));
  const status = typeof doc.status === "string" ? doc.status : r.code === 0 ? "pass" : "error";
  return {
    status,
    ...(doc.run?.id ? { runId: doc.run.id } : {}),
    detail: `attest ${job.plan.run} exited ${r.code}`,
    aborted: false,
  };
}
