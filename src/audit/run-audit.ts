/** The orchestrator: select → drill → evaluate → record → report. The only place that knows the order. */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/schema.js";
import { recordsOfRun } from "../history/history-record.js";
import { HistoryStore } from "../history/history-store.js";
import type { DrillPlan, DrillResult, RunKind, RunResult } from "../model.js";
import { measureDiskSpace } from "../policy/disk-space.js";
import { evaluatePolicies } from "../policy/evaluate.js";
import { createRuntime, type ManagedRuntime } from "../runtimes/registry.js";
import { createSource } from "../sources/registry.js";
import { describeError, UsageError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { redactDeep } from "../util/redact.js";
import { abortedListingRun } from "./aborted-listing.js";
import { runDrill } from "./drill.js";
import { previousInventory, writeEvidence } from "./evidence.js";
import { inventorySources, pickSources, policiesFor } from "./inventory.js";
import { makeRunId, runStatus } from "./run-status.js";
import { selectPlans } from "./select.js";

/** What to run. */
export interface AuditOptions {
  config: Config;
  kind: Extract<RunKind, "audit" | "drill">;
  sources: readonly string[];
  /** drill: a backup id or `latest`. */
  backup?: string;
  /** drill: recovery target time (physical backups). */
  targetTime?: string;
  label?: string;
  mail: boolean;
  logger: Logger;
  signal: AbortSignal;
  /** Called with the runtime once it exists (signal handlers destroy its sandboxes). */
  onRuntime?: (runtime: ManagedRuntime) => void;
  now?: () => Date;
  /** The run id, when the caller made it first (it names the run lock's owner). */
  runId?: string;
}

/** Runs an audit or a drill and returns its document. History and reports are written. */
export async function runAudit(opts: AuditOptions): Promise<RunResult> {
  const { config, logger } = opts;
  const now = opts.now ?? (() => new Date());
  const startedAt = now();
  const runId = opts.runId ?? makeRunId(startedAt);
  const sourceConfigs = pickSources(config, opts.sources);
  const history = new HistoryStore(config.history.csv);
  const past = history.read();
  logger.info(`${opts.kind} ${runId} started`, { sources: sourceConfigs.map((s) => s.name).join(",") });

  const runtime = await createRuntime(config, logger);
  opts.onRuntime?.(runtime);
  const swept = await runtime.sweep();
  if (swept.removed.length) logger.info("swept leftovers of earlier runs", { removed: swept.removed.length });
  // sources that make resources of their own (OCI clones, mounts) sweep what dead runs left
  for (const source of sourceConfigs.map(createSource)) {
    if (!source.sweep) continue;
    try {
      const r = await source.sweep({ logger, signal: opts.signal });
      if (r.removed.length)
        logger.info("swept leftovers of earlier runs", { source: source.name, removed: r.removed });
    } catch (err) {
      logger.warn("could not sweep leftovers of earlier runs", {
        source: source.name,
        error: describeError(err),
      });
    }
  }

  const inventories = await inventorySources(sourceConfigs, logger, opts.signal);
  if (opts.signal.aborted) {
    // a cut-short listing proves nothing about the backups: no policies, no history, no alerts
    const run = abortedListingRun({
      id: runId,
      kind: opts.kind,
      startedAt,
      finishedAt: now(),
      ...(opts.label ? { label: opts.label } : {}),
      reason: opts.signal.reason,
      sources: sourceConfigs,
    });
    writeRunDocument(config.reports.dir, run);
    logger.warn(`${opts.kind} ${runId} ${run.findings?.[0]?.message ?? "aborted during listing"}`);
    return run;
  }
  const plans: Array<{ plan: DrillPlan; inv: (typeof inventories)[number] }> = [];
  for (const inv of inventories) {
    const rules = opts.kind === "drill" ? [opts.backup ?? "latest"] : [inv.config.select].flat();
    for (const plan of selectPlans(inv.source, inv.backups, { rules, now: startedAt, history: past })) {
      if (opts.targetTime && plan.backup.family === "logical")
        throw new UsageError(
          `--target-time applies to physical backups; ${plan.backup.id} of source ${inv.config.name} is a logical dump, restored as it was taken`,
        );
      if (opts.targetTime) plan.target = { kind: "time", time: new Date(opts.targetTime).toISOString() };
      plans.push({ plan, inv });
    }
  }
  logger.info(`${plans.length} drill(s) planned`);

  const drills: DrillResult[] = new Array(plans.length);
  let next = 0;
  const worker = async () => {
    while (next < plans.length && !opts.signal.aborted) {
      const i = next++;
      const { plan, inv } = plans[i]!;
      const prev = previousInventory(config.reports.dir, past, inv.config.name, plan.backup.series);
      const out = await runDrill(plan, {
        runId,
        runtime,
        source: inv.config,
        logger,
        signal: opts.signal,
        timeoutMs: inv.config.timeout ?? config.sandbox.timeout,
        sourceAdapter: inv.source,
        ...(prev ? { previousInventory: prev } : {}),
      });
      out.result.evidence = writeEvidence(
        config.reports.dir,
        {
          runId,
          source: out.result.source,
          series: out.result.series,
          backupId: out.result.backup.id,
          ...(out.inventory ? { inventory: out.inventory } : {}),
          checks: out.result.checks,
          notes: out.result.notes,
        },
        i + 1,
      );
      drills[i] = out.result;
    }
  };
  await Promise.all(Array.from({ length: Math.min(config.sandbox.concurrency, plans.length) }, worker));
  const done = drills.filter(Boolean);

  const violations = evaluatePolicies({
    now: now(),
    sources: inventories.map((inv) => ({
      config: inv.config,
      policies: policiesFor(config, inv.config),
      backups: inv.backups,
      findings: inv.findings,
    })),
    drills: done,
    history: past,
    disks: await measureDiskSpace(config, inventories),
  });
  const findings = inventories.flatMap((i) => i.findings);
  const run: RunResult = {
    run: {
      id: runId,
      kind: opts.kind,
      startedAt: startedAt.toISOString(),
      finishedAt: now().toISOString(),
      ...(opts.label ? { label: opts.label } : {}),
    },
    status: runStatus(done, violations),
    drills: done,
    violations,
    ...(findings.length ? { findings } : {}),
  };
  if (inventories.some((i) => i.error) && run.status === "pass") run.status = "error";
  if (opts.signal.aborted && run.status !== "fail") run.status = "error";

  const head = history.append(recordsOfRun(run, run.run.finishedAt));
  writeRunDocument(config.reports.dir, run);
  try {
    // pdfkit and nodemailer are heavy to load; a drill that sends nothing never loads them
    const { deliver } = await import("../report/deliver.js");
    run.delivery = await deliver(run, { config, logger, historyHead: head, mail: opts.mail, inventories });
  } catch (err) {
    run.delivery = [{ channel: "reports", ok: false, detail: describeError(err) }];
  }
  logger.info(`${opts.kind} ${runId} finished`, {
    status: run.status,
    drills: done.length,
    violations: violations.length,
  });
  return run;
}

/** Writes the run's JSON document under reports/runs/. */
export function writeRunDocument(reportsDir: string, run: RunResult): string {
  const dir = join(reportsDir, "runs");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${run.run.id}.json`);
  // a secret that reached an error text (a store echoing its request) is never stored in clear
  writeFileSync(`${file}.tmp`, `${JSON.stringify(redactDeep(run), null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  return file;
}
