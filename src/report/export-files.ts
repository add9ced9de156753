/** Writes a compliance export: PDF, CSV files and one JSON document, into one folder. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Parser } from "@json2csv/plainjs";
import { redactDeep } from "../util/redact.js";
import { writeAtomic } from "./mail/outbox.js";
import { renderReport } from "./pdf/render-report.js";
import type { ReportModel } from "./report-model.js";

/** Formats an export can be written in. */
export const EXPORT_FORMATS = ["pdf", "csv", "json"] as const;
/** An export format. */
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

const DRILL_FIELDS = [
  "recordedAt",
  "source",
  "series",
  "backupId",
  "backupCreatedAt",
  "sizeBytes",
  "verdict",
  "totalMs",
  "measuredRpoSeconds",
  "checks",
  "reason",
  "evidence",
] as const;

const csv = (fields: string[], rows: Array<Record<string, unknown>>) =>
  `${new Parser({ fields, eol: "\n", withBOM: false }).parse(rows)}\n`;

/** Writes the model in each format; returns the files written. */
export async function writeExport(
  given: ReportModel,
  formats: readonly ExportFormat[],
  outDir: string,
): Promise<string[]> {
  // a secret that reached a stored reason or message is masked in every exported file
  const model = redactDeep(given);
  mkdirSync(outDir, { recursive: true });
  const stem = `compliance-${model.period.from.slice(0, 10)}_${model.period.to.slice(0, 10)}`;
  const files: string[] = [];
  const drills = model.drillRows.map((d) => ({
    recordedAt: d.at,
    source: d.result.source,
    series: d.result.series,
    backupId: d.result.backup.id,
    backupCreatedAt: d.result.backup.createdAt,
    sizeBytes: d.result.backup.sizeBytes,
    verdict: d.result.verdict,
    totalMs: d.result.timings.totalMs,
    measuredRpoSeconds: d.result.measuredRpoSeconds ?? "",
    checks: d.result.checks.map((c) => `${c.name}=${c.status}`).join(";"),
    reason: d.result.reason,
    evidence: d.result.evidence ?? "",
  }));
  const violations = model.violations.map((v) => ({
    source: v.source,
    series: v.series ?? "",
    rule: v.rule,
    severity: v.severity,
    message: v.message,
    since: v.since ?? "",
    firstSeen: v.firstSeen ?? "",
    lastSeen: v.lastSeen ?? "",
    runs: v.runs ?? "",
  }));
  const coverage = (model.coverage ?? []).map((c) => ({ ...c, lastPass: c.lastPass ?? "" }));

  if (formats.includes("pdf")) {
    const file = join(outDir, `${stem}.pdf`);
    await renderReport(model, file);
    files.push(file);
  }
  if (formats.includes("csv")) {
    const write = (name: string, fields: string[], rows: Array<Record<string, unknown>>) => {
      const file = join(outDir, `${stem}-${name}.csv`);
      writeAtomic(file, csv(fields, rows));
      files.push(file);
    };
    write("drills", [...DRILL_FIELDS], drills);
    write(
      "violations",
      ["source", "series", "rule", "severity", "message", "since", "firstSeen", "lastSeen", "runs"],
      violations,
    );
    write(
      "coverage",
      ["source", "series", "drills", "pass", "warn", "fail", "error", "lastPass", "longestUnverifiedMs"],
      coverage,
    );
  }
  if (formats.includes("json")) {
    const file = join(outDir, `${stem}.json`);
    const doc = {
      kind: "compliance-export",
      organization: model.organization,
      period: model.period,
      generatedAt: model.generatedAt,
      status: model.status,
      statusLine: model.statusLine,
      chain: model.chain,
      notes: model.notes,
      summary: model.summary,
      scope: model.scope,
      attention: model.attention,
      coverage,
      violations,
      drills,
      ...(model.controls ? { controls: model.controls } : {}),
    };
    writeAtomic(file, `${JSON.stringify(doc, null, 2)}\n`);
    files.push(file);
  }
  return files;
}
