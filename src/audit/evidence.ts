/** Evidence files: a drill's inventory and check details, kept beside the history. */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import type { HistoryRecord } from "../history/history-record.js";
import type { CheckResult, Inventory } from "../model.js";
import { redactDeep } from "../util/redact.js";

/** What an evidence file holds. */
export interface Evidence {
  runId: string;
  source: string;
  series: string;
  backupId: string;
  inventory?: Inventory;
  checks: CheckResult[];
  notes: string[];
}

/** Writes evidence; returns its path relative to the reports dir. */
export function writeEvidence(reportsDir: string, ev: Evidence, index: number): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80);
  const file = join(reportsDir, "evidence", ev.runId, `${index}-${safe(ev.source)}-${safe(ev.series)}.json`);
  mkdirSync(dirname(file), { recursive: true });
  // a secret that reached a note or check detail is never stored in clear
  writeFileSync(`${file}.tmp`, JSON.stringify(redactDeep(ev), null, 2));
  renameSync(`${file}.tmp`, file);
  return relative(reportsDir, file);
}

/** The inventory of the newest passing drill of a source and series, if its evidence survives. */
export function previousInventory(
  reportsDir: string,
  history: readonly HistoryRecord[],
  source: string,
  series: string,
): Inventory | undefined {
  for (let i = history.length - 1; i >= 0; i--) {
    const r = history[i]!;
    if (
      r.recordType !== "drill" ||
      r.source !== source ||
      r.series !== series ||
      r.verdict !== "pass" ||
      !r.evidence
    )
      continue;
    try {
      return (JSON.parse(readFileSync(join(reportsDir, r.evidence), "utf8")) as Evidence).inventory;
    } catch {
      return undefined;
    }
  }
  return undefined;
}
