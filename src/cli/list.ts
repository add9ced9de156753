/** `attest list`: every backup with series, age, size and format. No restore. */
import { inventorySources, pickSources } from "../audit/inventory.js";
import { formatBytes, formatDuration } from "../util/duration.js";
import { configFrom, fail, loggerFor, printJson } from "./common.js";

/** The flags of `list`. */
export interface ListFlags {
  config?: string;
  source?: string[];
  json?: boolean;
}

/** Runs `list`; returns the exit code. */
export async function list(flags: ListFlags): Promise<number> {
  try {
    const config = configFrom(flags.config);
    const logger = loggerFor(flags);
    const inventories = await inventorySources(pickSources(config, flags.source ?? []), logger);
    const now = Date.now();
    if (flags.json) {
      printJson({
        sources: inventories.map((i) => ({
          name: i.config.name,
          type: i.config.type,
          ...(i.error ? { error: i.error } : {}),
          backups: i.backups.map((b) => ({
            ...b,
            ageSeconds: Math.round((now - Date.parse(b.createdAt)) / 1000),
          })),
          findings: i.findings,
        })),
      });
    } else {
      const rows: string[][] = [["SOURCE", "SERIES", "BACKUP", "FORMAT", "CREATED", "AGE", "SIZE", "PG"]];
      for (const i of inventories) {
        for (const b of i.backups) {
          rows.push([
            i.config.name,
            b.series,
            b.id,
            b.format,
            `${b.createdAt.slice(0, 19)}Z${b.createdAtOrigin === "header" ? "" : ` (${b.createdAtOrigin})`}`,
            formatDuration(now - Date.parse(b.createdAt)),
            formatBytes(b.sizeBytes),
            b.pgMajor ? String(b.pgMajor) : "?",
          ]);
        }
      }
      const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
      const text = rows
        .map((r) =>
          r
            .map((v, c) => v.padEnd(widths[c]!))
            .join("  ")
            .trimEnd(),
        )
        .join("\n");
      process.stdout.write(`${text}\n`);
      for (const i of inventories)
        for (const f of i.findings) process.stdout.write(`${f.severity.toUpperCase()}: ${f.message}\n`);
    }
    return inventories.some((i) => i.error) ? 3 : 0;
  } catch (err) {
    return fail(err, flags.json);
  }
}
