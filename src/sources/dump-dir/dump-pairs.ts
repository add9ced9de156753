/**
 * Schema/data pairs of a dump directory: a `pg_dump --schema-only` dump and a `--data-only` dump
 * of one database taken together are one backup. The data dump is the backup (its id, series and
 * time); the schema dump it is paired with rides along in its detail and is not listed apart.
 */
import picomatch from "picomatch";
import { type Backup, detailOf, type Finding } from "../../model.js";

/** One configured pairing: globs (relative to the source path) and how far apart in time (ms). */
export interface PairRule {
  schema: string;
  data: string;
  within: number;
}

/** The schema dump a paired backup restores first, from its detail; undefined when unpaired. */
export function pairedSchema(b: Backup): Backup | undefined {
  const schema = detailOf(b, "dump")?.schema;
  if (!schema) return undefined;
  const { problem: _, ...rest } = b;
  return { ...rest, ...schema, detail: { kind: "dump", scope: "database" }, labels: {} };
}

/** Whether a backup is a data-only dump with no schema dump paired to it. */
export function needsSchema(b: Backup): boolean {
  const dump = detailOf(b, "dump");
  return dump?.content === "data-only" && !dump.schema;
}

/** The one-line reason an unpaired data-only dump cannot be drilled. */
export function needsSchemaReason(b: Backup): string {
  return `${b.id}: data-only dump: needs its schema dump (configure \`pairs: [{ schema: "<glob>", data: "<glob>" }]\` on source ${b.source})`;
}

/**
 * Pairs each data dump matching a rule's `data` glob with the dump matching its `schema` glob
 * nearest in time (at most `within` apart; one schema dump may serve several data dumps), and
 * drops the schema dumps so paired from the list.
 */
export function pairDumps(found: readonly Backup[], rules: readonly PairRule[]): Backup[] {
  const used = new Set<string>();
  const byId = new Map(found.map((b) => [b.id, b]));
  for (const rule of rules) {
    // a glob without a slash matches the file name in any subdirectory (the rotated daily layout)
    const isSchema = picomatch(rule.schema, { basename: true });
    const isData = picomatch(rule.data, { basename: true });
    const schemas = found.filter((b) => isSchema(b.id) && b.format !== "unknown");
    for (const d of found) {
      if (
        !isData(d.id) ||
        isSchema(d.id) ||
        d.format === "unknown" ||
        detailOf(byId.get(d.id) ?? d, "dump")?.schema
      )
        continue;
      const at = Date.parse(d.createdAt);
      let best: Backup | undefined;
      let bestGap = Number.POSITIVE_INFINITY;
      for (const s of schemas) {
        const gap = Math.abs(Date.parse(s.createdAt) - at);
        if (gap <= rule.within && gap < bestGap) [best, bestGap] = [s, gap];
      }
      if (!best) continue;
      used.add(best.id);
      byId.set(d.id, {
        ...d,
        sizeBytes: d.sizeBytes + best.sizeBytes,
        detail: {
          ...(detailOf(d, "dump") ?? { kind: "dump", scope: "database" }),
          schema: { id: best.id, location: best.location, format: best.format },
        },
      });
    }
  }
  return [...byId.values()].filter((b) => !used.has(b.id));
}

/** A warning for each data-only dump left without its schema dump. */
export function unpairedFindings(backups: readonly Backup[]): Finding[] {
  return backups.filter(needsSchema).map((b) => ({
    source: b.source,
    series: b.series,
    backupId: b.id,
    kind: "data_only_unpaired",
    severity: "warning" as const,
    message: needsSchemaReason(b),
  }));
}
