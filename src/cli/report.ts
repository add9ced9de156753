/** `attest report`: the compliance export over a period, from history alone (no restore). */
import { join } from "node:path";
import { FRAMEWORK_IDS, type FrameworkId } from "../evidence/framework-ids.js";
import type { HistoryRecord } from "../history/history-record.js";
import { HistoryStore } from "../history/history-store.js";
import { EXPORT_FORMATS, type ExportFormat, writeExport } from "../report/export-files.js";
import { exportModel } from "../report/export-model.js";
import { controlSections } from "../report/frameworks/control-mapping.js";
import { UsageError } from "../util/errors.js";
import { configFrom, fail, printJson } from "./common.js";

/** The flags of `report`. */
export interface ReportFlags {
  config?: string;
  from?: string;
  to?: string;
  format?: string;
  framework?: string;
  out?: string;
  json?: boolean;
}

/** A `--from`/`--to` value: a date (whole UTC day) or an ISO time. */
export function parseBound(text: string, flag: string, end: boolean): Date {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(text);
  const t = Date.parse(day ? `${text}T${end ? "23:59:59.999" : "00:00:00.000"}Z` : text);
  if (!Number.isFinite(t)) throw new UsageError(`${flag} ${text} is not a date (YYYY-MM-DD) or an ISO time`);
  return new Date(t);
}

function parseFormats(text: string): ExportFormat[] {
  const wanted = text
    .split(",")
    .map((f) => f.trim().toLowerCase())
    .filter(Boolean);
  const bad = wanted.filter((f) => !(EXPORT_FORMATS as readonly string[]).includes(f));
  if (bad.length || wanted.length === 0)
    throw new UsageError(`--format takes ${EXPORT_FORMATS.join(",")} (got ${text})`);
  return wanted as ExportFormat[];
}

/** A `--framework` value: framework ids, comma-separated. */
export function parseFrameworks(text: string): FrameworkId[] {
  const wanted = text
    .split(",")
    .map((f) => f.trim().toLowerCase())
    .filter(Boolean);
  const bad = wanted.filter((f) => !(FRAMEWORK_IDS as readonly string[]).includes(f));
  if (bad.length || wanted.length === 0)
    throw new UsageError(`--framework takes ${FRAMEWORK_IDS.join(",")} (got ${text})`);
  return [...new Set(wanted)] as FrameworkId[];
}

/** Runs `report`; returns the exit code. */
export async function report(flags: ReportFlags): Promise<number> {
  try {
    const config = configFrom(flags.config);
    if (!flags.from || !flags.to) throw new UsageError("--from DATE and --to DATE are required");
    const from = parseBound(flags.from, "--from", false);
    const to = parseBound(flags.to, "--to", true);
    if (from > to) throw new UsageError(`--from ${flags.from} is after --to ${flags.to}`);
    const formats = parseFormats(flags.format ?? "pdf,csv,json");
    const out =
      flags.out ??
      join(
        config.reports.dir,
        "exports",
        `${from.toISOString().slice(0, 10)}_${to.toISOString().slice(0, 10)}`,
      );

    // the chain is verified before anything is read as evidence
    const store = new HistoryStore(config.history.csv);
    const chain = store.verify();
    let history: HistoryRecord[] = [];
    try {
      history = store.read();
    } catch {
      // not a history file: the chain verdict already says why, the export shows no rows
    }
    const model = exportModel({ config, history, chain, from, to, now: new Date() });
    const frameworks = flags.framework
      ? parseFrameworks(flags.framework)
      : (config.evidence?.frameworks ?? []);
    if (frameworks.length) model.controls = controlSections(frameworks, model, history);
    const files = await writeExport(model, formats, out);
    if (flags.json) {
      printJson({
        kind: "report",
        status: model.status,
        period: model.period,
        chain,
        files,
        statusLine: model.statusLine,
      });
    } else {
      const state = chain.ok
        ? `history chain intact (${chain.rows} rows, head ${chain.head})`
        : `HISTORY CHAIN BROKEN: ${chain.problem}`;
      process.stdout.write(`${model.statusLine}\n${state}\n${files.map((f) => `wrote ${f}`).join("\n")}\n`);
    }
    // the export is written either way; a broken chain is not a clean result
    return chain.ok ? 0 : 1;
  } catch (err) {
    return fail(err, flags.json);
  }
}
