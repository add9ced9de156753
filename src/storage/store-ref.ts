/** A source's `storage:` key: the name of a configured store, joined to its configuration on load. */
import { z } from "zod";
import type { StorageConfig } from "./storage-config.js";

/** A named store as a source sees it; `config` is filled in from the top-level `storage:` map. */
export interface StoreRef {
  name: string;
  config?: StorageConfig;
}

/** The `storage: NAME` key of a source. */
export const storeRefSchema = z
  .string()
  .min(1)
  .transform((name): StoreRef => ({ name }));

/**
 * Joins every source's store name to the store's configuration (an unknown name is reported by
 * `unknownStoreIssues` before this runs).
 */
export function joinStoreRefs<T extends { storage: Record<string, StorageConfig>; sources: object[] }>(
  cfg: T,
): T {
  for (const s of cfg.sources) {
    const ref = (s as { storage?: StoreRef }).storage;
    if (ref && typeof ref === "object") ref.config = cfg.storage[ref.name];
  }
  return cfg;
}

/** `sources[i].storage` naming a store that is not configured: path and message for each. */
export function unknownStoreIssues(cfg: {
  storage: Record<string, unknown>;
  sources: object[];
}): Array<{ path: (string | number)[]; message: string }> {
  const issues: Array<{ path: (string | number)[]; message: string }> = [];
  cfg.sources.forEach((s, i) => {
    const ref = (s as { storage?: StoreRef }).storage;
    if (ref && !(ref.name in cfg.storage)) {
      const known = Object.keys(cfg.storage);
      issues.push({
        path: ["sources", i, "storage"],
        message: `no store "${ref.name}" under storage: (configured: ${known.length ? known.join(", ") : "none"})`,
      });
    }
  });
  return issues;
}
