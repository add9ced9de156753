/**
 * The measuring half of `storage_free`: which local directories hold a source's backups, and how
 * much space their filesystems have left (statfs). Runs before the pure rules; object stores have
 * no filesystem of ours to measure and are left out.
 */
import { stat, statfs } from "node:fs/promises";
import type { Config, SourceConfig } from "../config/schema.js";
import type { StorageConfig } from "../storage/storage-config.js";
import { coerceError } from "../util/errors.js";
import type { DiskSpace } from "./storage-free.js";

/** The local directories holding `source`'s backups: its path and WAL archive, its local stores. */
export function localBackupPaths(source: SourceConfig): string[] {
  const out: string[] = [];
  const s = source as SourceConfig & { path?: unknown; wal_archive?: unknown; storage?: unknown };
  const store = storeOf(s.storage);
  if (store?.type === "local") out.push(store.path);
  else if (s.storage === undefined && (s.type === "dump-dir" || s.type === "basebackup")) {
    if (typeof s.path === "string") out.push(s.path);
    if (typeof s.wal_archive === "string") out.push(s.wal_archive);
  }
  // a local mirror the `objects` check compares with is part of the backup set too
  for (const o of source.checks.objects ?? []) {
    const mirror = o.storage.config;
    if (mirror?.type === "local") out.push(mirror.path);
  }
  return [...new Set(out)];
}

function storeOf(ref: unknown): StorageConfig | undefined {
  return ref && typeof ref === "object" && "config" in ref ? (ref.config as StorageConfig) : undefined;
}

/** The free space around each source's local backup paths, for the sources with `storage_free`. */
export async function measureDiskSpace(
  config: Pick<Config, "policies">,
  sources: ReadonlyArray<{ config: SourceConfig }>,
): Promise<DiskSpace[]> {
  const out: DiskSpace[] = [];
  for (const { config: source } of sources) {
    if (!(source.policies?.storage_free ?? config.policies.storage_free)) continue;
    out.push(...(await measurePaths(source.name, localBackupPaths(source))));
  }
  return out;
}

/** One entry per filesystem (paths on one device share it); a path that cannot be read, its own. */
export async function measurePaths(source: string, paths: readonly string[]): Promise<DiskSpace[]> {
  const byDevice = new Map<number, DiskSpace>();
  const out: DiskSpace[] = [];
  for (const path of paths) {
    try {
      const { dev } = await stat(path);
      const known = byDevice.get(dev);
      if (known) {
        known.paths.push(path);
        continue;
      }
      const fs = await statfs(path);
      // bavail: what an unprivileged writer (the backup tool) may still use, not root's reserve
      const d: DiskSpace = {
        source,
        paths: [path],
        freeBytes: fs.bavail * fs.bsize,
        totalBytes: fs.blocks * fs.bsize,
      };
      byDevice.set(dev, d);
      out.push(d);
    } catch (err) {
      const e = coerceError(err);
      out.push({ source, paths: [path], error: (e as NodeJS.ErrnoException).code ?? e.message });
    }
  }
  return out;
}
