/** `/runs`: summaries of the newest run documents under reports/runs/. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { RunResult, Verdict } from "../model.js";

/** One run, briefly. */
export interface RunSummary {
  id: string;
  kind?: string;
  label?: string;
  startedAt?: string;
  finishedAt?: string;
  status?: Verdict;
  drills?: number;
  verdicts?: Partial<Record<Verdict, number>>;
  violations?: { critical: number; warning: number };
  /** Relative path of the full document under the reports dir. */
  document: string;
  /** Set when the document could not be read. */
  error?: string;
}

/** The `limit` newest run documents, newest first (run ids start with their UTC start time). */
export function recentRuns(reportsDir: string, limit: number): RunSummary[] {
  const dir = join(reportsDir, "runs");
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".json"));
  } catch {
    return [];
  }
  names.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  return names.slice(0, limit).map((name) => summarize(dir, name));
}

function summarize(dir: string, name: string): RunSummary {
  const id = name.slice(0, -".json".length);
  const document = `runs/${name}`;
  try {
    const run = JSON.parse(readFileSync(join(dir, name), "utf8")) as RunResult;
    const verdicts: Partial<Record<Verdict, number>> = {};
    for (const d of run.drills ?? []) verdicts[d.verdict] = (verdicts[d.verdict] ?? 0) + 1;
    const violations = { critical: 0, warning: 0 };
    for (const v of run.violations ?? []) violations[v.severity] += 1;
    return {
      id: run.run?.id ?? id,
      kind: run.run?.kind,
      ...(run.run?.label ? { label: run.run.label } : {}),
      startedAt: run.run?.startedAt,
      finishedAt: run.run?.finishedAt,
      status: run.status,
      drills: run.drills?.length ?? 0,
      verdicts,
      violations,
      document,
    };
  } catch (err) {
    return { id, document, error: `cannot read: ${(err as Error).message}` };
  }
}
