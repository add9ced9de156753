/** The report model of an audit or drill run: its drills, violations, and the state of each series. */

import type { SourceInventory } from "../audit/inventory.js";
import { policiesFor } from "../audit/inventory.js";
import type { Config } from "../config/schema.js";
import type { HistoryRecord } from "../history/history-record.js";
import type { RunResult } from "../model.js";
import type { PolicyInput } from "../policy/evaluate.js";
import { seriesStatuses } from "../policy/series-status.js";
import { backupsOfDrills, drillOfRecord } from "./history-drills.js";
import { rtoSeriesOf, type TimedDrill, timelinesOf, withEvidence } from "./model-parts.js";
import { type ChainState, type ReportModel, statusLine } from "./report-model.js";
import { attentionOf, evidenceOf, scopeOf } from "./report-scope.js";

/** What an audit report is made of. */
export interface AuditModelInput {
  run: RunResult;
  config: Config;
  /** History rows; this run's own rows (same run id) are recognised and left out. */
  history: readonly HistoryRecord[];
  chain: ChainState;
  /** The sources the run listed; without them, backups are known only from drills. */
  inventories?: readonly SourceInventory[];
}

/** Builds the model of one run's report. */
export function auditModel(input: AuditModelInput): ReportModel {
  const { run, config } = input;
  const now = new Date(run.run.finishedAt);
  const past = input.history.filter((r) => r.runId !== run.run.id);
  const pastDrills: TimedDrill[] = past
    .filter((r) => r.recordType === "drill")
    .map((r) => ({ at: r.recordedAt, result: drillOfRecord(r) }));
  const current: TimedDrill[] = run.drills.map((result) => ({ at: run.run.finishedAt, result }));
  const allDrills = [...pastDrills, ...current];
  const notes: string[] = [];

  const policyInput: PolicyInput = { now, sources: [], drills: run.drills, history: past };
  if (input.inventories) {
    for (const inv of input.inventories) {
      if (inv.error) notes.push(`${inv.config.name} could not be listed: ${inv.error}`);
      else
        policyInput.sources.push({
          config: inv.config,
          policies: policiesFor(config, inv.config),
          backups: inv.backups,
          findings: inv.findings,
        });
    }
  } else {
    const named = new Set([...run.drills, ...run.violations, ...(run.findings ?? [])].map((x) => x.source));
    const backups = backupsOfDrills(allDrills.map((d) => d.result));
    for (const sc of config.sources) {
      if (named.size > 0 && !named.has(sc.name)) continue;
      policyInput.sources.push({
        config: sc,
        policies: policiesFor(config, sc),
        backups: backups.filter((b) => b.source === sc.name),
        findings: [],
      });
    }
    notes.push(
      "The backup inventory was not passed to the report: newest backups and timelines show drilled backups only.",
    );
  }
  const summary = seriesStatuses(policyInput, run.violations);
  const policiesOf = (name: string) => policyInput.sources.find((s) => s.config.name === name)?.policies;
  const backups = policyInput.sources.flatMap((s) => s.backups);
  const pages = current.map((d) => withEvidence(config.reports.dir, { ...d, runId: run.run.id }));
  // a run covers what it drilled: a series it did not drill is not missing evidence of this run
  const scope = scopeOf(evidenceOf(summary, pages, run.violations, policiesOf), pages).map((r) => {
    if (r.status !== "no-evidence") return r;
    const { status: _, ...rest } = r;
    return rest;
  });

  return {
    kind: run.run.kind === "drill" ? "drill" : run.run.kind === "check" ? "check" : "audit",
    title: run.run.kind === "drill" ? "Backup restore drill" : "Backup restore audit",
    organization: { ...config.organization },
    period: { from: run.run.startedAt, to: run.run.finishedAt },
    generatedAt: new Date().toISOString(),
    runId: run.run.id,
    ...(run.run.label ? { label: run.run.label } : {}),
    // the run's own status: it already weighs its drills, violations and listing failures
    status: run.status,
    scope,
    attention: attentionOf(pages, run.violations, scope),
    statusLine: statusLine(run.drills, run.violations),
    summary,
    violations: run.violations,
    drillPages: pages,
    drillRows: [],
    rto: rtoSeriesOf(summary, allDrills, policiesOf),
    timelines: timelinesOf(summary, backups, allDrills, policiesOf),
    chain: input.chain,
    notes,
  };
}
