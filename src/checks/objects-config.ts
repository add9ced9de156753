/**
 * Configuration of the `objects` check (files and database restored together): which query
 * names the object keys, and which configured store and prefix must hold them.
 */
import { z } from "zod";
import type { StorageConfig } from "../storage/storage-config.js";
import { type StoreRef, storeRefSchema } from "../storage/store-ref.js";
import { parseDuration } from "../util/duration.js";

// common-schema.ts imports this file, so its durationSchema is not ready here yet
const timeoutSchema = z
  .string()
  .default("10m")
  .transform((s, ctx) => {
    const ms = parseDuration(s);
    if (ms === undefined || ms <= 0) {
      ctx.addIssue({ code: "custom", message: `"${s}" is not a duration (use e.g. 90s, 30m)` });
      return z.NEVER;
    }
    return ms;
  });

const objectsEntrySchema = z
  .object({
    /** Tells several object checks of one source apart (`objects: NAME`). */
    name: z.string().min(1).optional(),
    database: z.string().min(1),
    /** A SELECT whose first column is an object key relative to `path`. */
    sql: z.string().min(1),
    /** A store configured under the top-level `storage:`. */
    storage: storeRefSchema,
    /** Key prefix in the store under which the keys live ("" = the store's root). */
    path: z.string().default(""),
    /** Longest the query may run (a statement timeout in the restored server). */
    timeout: timeoutSchema,
  })
  .strict();

/** One resolved object check. */
export type ObjectsCheckConfig = z.infer<typeof objectsEntrySchema>;

/** `checks.objects`: one mapping, or a list of them with distinct names; always a list once parsed. */
export const objectsCheckSchema = z
  .union([objectsEntrySchema, z.array(objectsEntrySchema).min(1)])
  .transform((v) => (Array.isArray(v) ? v : [v]))
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((o, i) => {
      const name = objectsCheckName(o);
      if (seen.has(name))
        ctx.addIssue({
          code: "custom",
          path: [i, "name"],
          message: `two object checks are called "${name}": give each a distinct name`,
        });
      seen.add(name);
    });
  });

/** The result name of one object check. */
export function objectsCheckName(o: Pick<ObjectsCheckConfig, "name">): string {
  return o.name ? `objects: ${o.name}` : "objects";
}

interface WithObjectChecks {
  storage: Record<string, StorageConfig>;
  checks?: { objects?: ObjectsCheckConfig[] } | undefined;
  sources: Array<{ checks?: { objects?: ObjectsCheckConfig[] } }>;
}

/** Object checks naming a store that is not configured: path and message for each. */
export function unknownObjectStoreIssues(
  cfg: WithObjectChecks,
): Array<{ path: (string | number)[]; message: string }> {
  const known = Object.keys(cfg.storage);
  const out: Array<{ path: (string | number)[]; message: string }> = [];
  cfg.sources.forEach((s, i) => {
    (s.checks?.objects ?? []).forEach((o, k) => {
      if (!(o.storage.name in cfg.storage))
        out.push({
          path: ["sources", i, "checks", "objects", k, "storage"],
          message: `no store "${o.storage.name}" under storage: (configured: ${known.length ? known.join(", ") : "none"})`,
        });
    });
  });
  return out;
}

/** Joins every object check's store name to the store's configuration. */
export function joinObjectStores<T extends WithObjectChecks>(cfg: T): T {
  for (const s of cfg.sources)
    for (const o of s.checks?.objects ?? []) (o.storage as StoreRef).config = cfg.storage[o.storage.name];
  return cfg;
}
