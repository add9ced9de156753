/** One drill: provision → restore → checks → destroy, every phase timed, the sandbox always destroyed. */

import type { CheckContext } from "../checks/check.js";
import { runChecks } from "../checks/registry.js";
import type { SourceConfig } from "../config/schema.js";
import type { CheckResult, DrillPlan, DrillResult, Inventory, Timings, Verdict } from "../model.js";
import { restorerFor } from "../restore/registry.js";
import type { RestoreOutcome } from "../restore/restorer.js";
import type { Runtime, Sandbox } from "../runtimes/runtime.js";
import type { PreparedBackup, PrepareRecord, Source } from "../sources/source.js";
import { formatDuration } from "../util/duration.js";
import { BackupDefectError, describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";

/** What a drill needs. */
export interface DrillDeps {
  runId: string;
  runtime: Runtime;
  source: SourceConfig;
  logger: Logger;
  signal: AbortSignal;
  timeoutMs: number;
  previousInventory?: Inventory;
  /** The source's adapter: its `prepare` (clone, attach, mount) runs before provisioning. */
  sourceAdapter?: Source;
}

/** A drill's result plus what only the evidence file keeps. */
export interface DrillOutput {
  result: DrillResult;
  inventory?: Inventory;
}

class Phase {
  readonly #start = Date.now();
  ms(): number {
    return Date.now() - this.#start;
  }
}

/** Runs one drill. Never throws: every outcome is a DrillResult. */
export async function runDrill(plan: DrillPlan, deps: DrillDeps): Promise<DrillOutput> {
  const { logger } = deps;
  const b = plan.backup;
  const key = `${deps.source.name}/${b.series}`;
  const started = new Date();
  const total = new Phase();
  const timings: Timings = {
    provisionMs: 0,
    restoreMs: 0,
    recoveryMs: 0,
    checksMs: 0,
    teardownMs: 0,
    totalMs: 0,
  };
  const notes: string[] = [];
  let checks: CheckResult[] = [];
  let restored: RestoreOutcome | undefined;
  let sandbox: Sandbox | undefined;
  let prepared: PreparedBackup | undefined;
  const prepareRecord: PrepareRecord = { phases: {}, resources: [] };
  const prepare = deps.sourceAdapter?.prepare?.bind(deps.sourceAdapter);
  let verdict: Verdict = "pass";
  let reason = "";
  let phaseName = "provision";
  let inventory: Inventory | undefined;
  let newestData: string | undefined;
  const signal = AbortSignal.any([deps.signal, AbortSignal.timeout(deps.timeoutMs)]);
  const ticker = setInterval(() => logger.progress(key, `${phaseName} ${formatDuration(total.ms())}`), 1000);
  ticker.unref();
  const progress = (text: string) =>
    logger.progress(key, `${phaseName} ${formatDuration(total.ms())} · ${text}`);
  const deadline = () => Math.max(1000, deps.timeoutMs - total.ms());

  try {
    const restorer = restorerFor(b, deps.source);
    let major = b.pgMajor ?? 0;
    const dumpMajor = Number(/^(\d+)/.exec(b.labels.dumpVersion ?? "")?.[1] ?? 0);
    // an archive written by a newer pg_dump needs a pg_restore at least that new
    if (b.family === "logical" && dumpMajor > major) major = dumpMajor;
    logger.info("drill started", {
      source: deps.source.name,
      backup: b.id,
      format: b.format,
      reason: plan.reason,
    });
    const p1 = new Phase();
    await restorer.preflight?.(plan, signal);
    if (prepare) {
      phaseName = "prepare";
      progress("preparing the backup (clone, attach, mount)");
      prepared = await prepare(plan, { runId: deps.runId, logger, signal, record: prepareRecord });
      if (prepared.pgMajor) major = prepared.pgMajor;
      notes.push(...prepared.notes);
      phaseName = "provision";
    }
    progress("provisioning sandbox");
    sandbox = await deps.runtime.provision(
      {
        pgMajor: major,
        allowNewer: b.family === "logical",
        labels: { run: deps.runId, source: deps.source.name, backup: b.id },
        mode: prepared ? "empty" : restorer.sandboxMode,
        inputs: (restorer.inputs?.(plan) ?? [b.location]).map((hostPath) => ({ hostPath })),
        ...(prepared ? { dataDir: prepared.dataDir } : {}),
      },
      signal,
    );
    timings.provisionMs = p1.ms();
    if (b.pgMajor && sandbox.pgMajor !== b.pgMajor)
      notes.push(`restored a PostgreSQL ${b.pgMajor} backup into a PostgreSQL ${sandbox.pgMajor} sandbox`);

    phaseName = "restore";
    const p2 = new Phase();
    restored = await restorer.restore(sandbox, { plan, logger, signal, timeoutMs: deadline(), progress });
    timings.recoveryMs = restored.recoveryMs ?? 0;
    timings.restoreMs = Math.max(0, p2.ms() - timings.recoveryMs);
    notes.push(...restored.notes);

    phaseName = "checks";
    const p3 = new Phase();
    const ctx: CheckContext = {
      sandbox,
      plan,
      restored,
      config: deps.source.checks,
      shared: {},
      drillStartedAt: started,
      logger,
      signal,
      timeoutMs: deadline(),
      ...(deps.previousInventory ? { previousInventory: deps.previousInventory } : {}),
    };
    checks = await runChecks(ctx);
    timings.checksMs = p3.ms();
    inventory = ctx.shared.inventory;
    newestData = ctx.shared.newestData;
    ({ verdict, reason } = verdictOfChecks(checks));
  } catch (err) {
    const timedOut = signal.aborted && !deps.signal.aborted;
    if (err instanceof BackupDefectError) {
      verdict = "fail";
      reason = err.message;
    } else {
      verdict = "error";
      reason = timedOut
        ? `drill timed out after ${formatDuration(deps.timeoutMs)} during ${phaseName}`
        : deps.signal.aborted
          ? `drill aborted during ${phaseName}: ${describeError(deps.signal.reason)}`
          : diskFull(describeError(err))
            ? `sandbox ran out of disk space during ${phaseName}: ${describeError(err)}`
            : `${phaseName}: ${describeError(err)}`;
    }
    if (sandbox) {
      const tail = await sandbox.logTail(5).catch(() => "");
      if (tail.trim()) logger.debug("sandbox server log tail", { tail });
    }
  } finally {
    clearInterval(ticker);
    phaseName = "teardown";
    const p4 = new Phase();
    if (sandbox) {
      try {
        await sandbox.destroy();
      } catch (err) {
        notes.push(`teardown failed: ${describeError(err)}`);
        if (["pass", "warn"].includes(verdict as Verdict)) {
          verdict = "error";
          reason = `sandbox teardown failed: ${describeError(err)}`;
        }
      }
    }
    // after the sandbox: its server ran on the prepared data directory
    if (prepared) {
      try {
        const released = await prepared.dispose();
        Object.assign(prepareRecord.phases, released.phases);
      } catch (err) {
        notes.push(`releasing the prepared backup failed: ${describeError(err)}`);
        if (["pass", "warn"].includes(verdict as Verdict)) {
          verdict = "error";
          reason = `releasing the prepared backup failed: ${describeError(err)}`;
        }
      }
    }
    timings.teardownMs = p4.ms();
    timings.totalMs = total.ms();
    logger.done(key);
  }
  if (verdict === "pass" && !reason) reason = "restored and verified";
  const result: DrillResult = {
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
    ...(plan.target ? { target: plan.target } : {}),
    verdict,
    reason,
    timings,
    ...(restored?.reached ? { reached: restored.reached } : {}),
    checks,
    ...(prepare ? { phases: prepareRecord.phases, resources: prepareRecord.resources } : {}),
    ...(newestData
      ? {
          newestData,
          measuredRpoSeconds: Math.max(0, Math.round((started.getTime() - Date.parse(newestData)) / 1000)),
        }
      : {}),
    notes,
  };
  logger.info("drill finished", {
    source: deps.source.name,
    backup: b.id,
    verdict,
    reason,
    totalMs: timings.totalMs,
  });
  return { result, ...(inventory ? { inventory } : {}) };
}

/** Whether an error message says the sandbox's disk is full (the verifier's problem, not the backup's). */
export function diskFull(message: string): boolean {
  return /No space left on device|could not extend file|disk full/i.test(message);
}

/** The verdict the checks add up to: any fail → fail; any error → error; any warn → warn. */
export function verdictOfChecks(checks: readonly CheckResult[]): { verdict: Verdict; reason: string } {
  const first = (s: string) => checks.find((c) => c.status === s);
  const failed = first("fail");
  if (failed) return { verdict: "fail", reason: `${failed.name}: ${failed.detail}` };
  const errored = first("error");
  if (errored)
    return { verdict: "error", reason: `${errored.name} could not be performed: ${errored.detail}` };
  const warned = first("warn");
  if (warned) return { verdict: "warn", reason: `${warned.name}: ${warned.detail}` };
  if (!checks.some((c) => c.status === "pass")) return { verdict: "error", reason: "no check was performed" };
  const passed = checks.filter((c) => c.status === "pass").length;
  return { verdict: "pass", reason: `restored; ${passed} check(s) passed` };
}
