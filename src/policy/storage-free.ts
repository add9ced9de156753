/**
 * Rule `storage_free`: the filesystem holding a local backup directory (a source's `path`, its WAL
 * archive, a `type: local` store) has less free space than configured. The next backup or WAL
 * segment may not fit: PGBen's "disk space critical" alert. Pure: the space is measured before
 * the rules run (disk-space.ts) and handed in.
 */
import { z } from "zod";
import type { Violation } from "../model.js";
import { formatBytes } from "../util/duration.js";

const UNITS = ["", "k", "m", "g", "t"] as const;

/** A size such as 20GB, 512m or 1.5TiB (binary units: 1 GB = 1024³ bytes, as `df -h` counts). */
const bytesSchema = z.union([z.number().int().min(0), z.string()]).transform((v, ctx) => {
  if (typeof v === "number") return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(v);
  if (!m) {
    ctx.addIssue({ code: "custom", message: `"${v}" is not a size (e.g. 20GB, 512MB)` });
    return z.NEVER;
  }
  const power = UNITS.indexOf((m[2] ?? "").toLowerCase() as (typeof UNITS)[number]);
  return Math.round(Number(m[1]) * 1024 ** power);
});

const percentSchema = z.number().gt(0).lt(100);

/** `policies.storage_free`: warning thresholds, and optional critical ones below them. */
export const storageFreeSchema = z
  .object({
    /** Warn below this many free bytes. */
    min_free: bytesSchema.optional(),
    /** Warn below this share of the filesystem free, in percent. */
    min_free_percent: percentSchema.optional(),
    /** Critical below this many free bytes. */
    critical_below: bytesSchema.optional(),
    /** Critical below this share free, in percent. */
    critical_below_percent: percentSchema.optional(),
  })
  .strict()
  .refine((s) => Object.values(s).some((v) => v !== undefined), {
    message:
      "storage_free needs a threshold: min_free, min_free_percent, critical_below or critical_below_percent",
  });

/** Resolved `storage_free` thresholds (sizes in bytes). */
export type StorageFreeConfig = z.infer<typeof storageFreeSchema>;

/** The free space of one filesystem holding a source's local backup paths, or why it is unknown. */
export type DiskSpace = { source: string; paths: string[] } & (
  | { freeBytes: number; totalBytes: number }
  | { error: string }
);

/** Evaluates `storage_free` for one source's measured filesystems. */
export function storageFreeRule(
  source: string,
  cfg: StorageFreeConfig | undefined,
  disks: readonly DiskSpace[],
): Violation[] {
  if (!cfg) return [];
  const out: Violation[] = [];
  for (const d of disks) {
    if (d.source !== source) continue;
    const where = d.paths.join(", ");
    const aspect = d.paths[0] ?? "";
    if ("error" in d) {
      out.push({
        source,
        rule: "storage_free",
        severity: "warning",
        message: `cannot measure the free space of ${where}: ${d.error}`,
        evidence: { aspect, paths: d.paths, error: d.error },
      });
      continue;
    }
    const pct = d.totalBytes > 0 ? (d.freeBytes / d.totalBytes) * 100 : 0;
    const breach = (bytes?: number, percent?: number): string | undefined => {
      if (bytes !== undefined && d.freeBytes < bytes) return formatBytes(bytes);
      if (percent !== undefined && pct < percent) return `${percent}%`;
      return undefined;
    };
    const critical = breach(cfg.critical_below, cfg.critical_below_percent);
    const warning = critical ?? breach(cfg.min_free, cfg.min_free_percent);
    if (!warning) continue;
    out.push({
      source,
      rule: "storage_free",
      severity: critical ? "critical" : "warning",
      message: `the filesystem holding ${where} has ${formatBytes(d.freeBytes)} free (${pct.toFixed(1)}% of ${formatBytes(d.totalBytes)}), below the ${critical ? "critical threshold" : "minimum"} of ${warning} (storage_free)`,
      evidence: { aspect, paths: d.paths, freeBytes: d.freeBytes, totalBytes: d.totalBytes },
    });
  }
  return out;
}
