/**
 * The dump-dir family over a store (`storage:` + `path:` as a key prefix): lists the objects under
 * the prefix and tells each one's format and dump time from its first bytes, read as a byte range
 * (the dump itself is not downloaded to be listed).
 */
import { constants, gunzipSync } from "node:zlib";
import { type Backup, detailOf, type Finding } from "../../model.js";
import { compressionOf } from "../../restore/logical/decompress.js";
import { createStorage } from "../../storage/create-storage.js";
import type { Storage, StoredObject } from "../../storage/storage.js";
import { UnlistedKeys } from "../../storage/unlisted-keys.js";
import type { SourceContext } from "../source.js";
import { archive, type Detected, fromGzipContent, fromTarHead, isGzip, isTar } from "./detect-format.js";
import type { DumpDirSourceConfig } from "./dump-dir-config.js";
import { dumpFacts } from "./dump-facts.js";
import { parsePlainHeader } from "./plain-header.js";

/** How much of an object is read to tell what it is. */
const HEAD_BYTES = 64 * 1024;
/** Heads read at once while listing. */
const HEAD_READERS = 8;

/** What the first bytes of an object say it is (the on-disk rules of detect-format.ts, over a buffer). */
export function detectFromHead(head: Buffer, sizeBytes: number): Detected {
  if (sizeBytes === 0) return { format: "unknown", problem: "the object is empty", sizeBytes };
  if (head.toString("latin1", 0, 5) === "PGDMP") return archive(head, "custom", sizeBytes);
  if (isTar(head)) return fromTarHead(head, sizeBytes);
  if (isGzip(head)) {
    let inner: Buffer;
    try {
      // a head is a cut gzip stream: flush what it holds instead of asking for its end
      inner = gunzipSync(head, { finishFlush: constants.Z_SYNC_FLUSH });
    } catch (err) {
      return { format: "unknown", problem: `a gzip object that cannot be read: ${String(err)}`, sizeBytes };
    }
    return fromGzipContent(inner, sizeBytes);
  }
  // bzip2, xz, zstd, lz4 are decompressed only by confined tools, which read files: the format is
  // known from the magic, the header is read when the drill has fetched the object
  const compression = compressionOf(head);
  if (compression) return { format: `plain-${compression}`, sizeBytes };
  const plain = parsePlainHeader(head);
  if (plain) return { format: "plain", plain, sizeBytes };
  return {
    format: "unknown",
    problem: "not a pg_dump archive (no PGDMP signature) nor a plain SQL dump header",
    sizeBytes,
  };
}

/** Opens the source's store (the caller closes it). */
export async function openSourceStore(cfg: DumpDirSourceConfig): Promise<Storage> {
  const ref = cfg.storage;
  if (!ref?.config)
    throw new Error(`source ${cfg.name}: store "${ref?.name}" is not configured under storage:`);
  return createStorage(ref.name, ref.config);
}

/** Matchers of the source's include / exclude patterns, relative to the prefix. */
export interface KeyFilter {
  include(rel: string): boolean;
  exclude(rel: string): boolean;
}

/**
 * Every dump under the source's prefix as a Backup (`location` is the object's URI, `stored`
 * says which store and key); unreadable objects also become findings.
 */
export async function listStoredDumps(
  cfg: DumpDirSourceConfig,
  filter: KeyFilter,
  ctx: SourceContext,
  findings: Finding[],
): Promise<Backup[]> {
  const storage = await openSourceStore(cfg);
  try {
    const prefix = cfg.path === "/" ? "" : cfg.path;
    const objects: StoredObject[] = [];
    const relOf = (key: string) => key.slice(prefix.length).replace(/^\/+/, "");
    const unlisted = new UnlistedKeys();
    // only keys the source would have looked at: an excluded one is no loss worth a warning
    const onUnlisted = (key: string, why: string) => {
      const rel = relOf(key);
      if (!filter.exclude(rel) && filter.include(rel)) unlisted.onUnlisted(key, why);
    };
    for await (const o of storage.list(prefix, { onUnlisted, ...(ctx.signal ? { signal: ctx.signal } : {}) }))
      objects.push(o);
    const left = unlisted.finding(cfg.name, storage.describe(prefix));
    if (left) findings.push(left);
    // a directory-format dump is every object under a prefix that holds toc.dat
    const dirs = objects
      .map((o) => relOf(o.key))
      .filter((rel) => rel === "toc.dat" || rel.endsWith("/toc.dat"))
      .map((rel) => rel.slice(0, -"toc.dat".length));
    // one pass over the objects: each one joins every dump directory above it (O(objects × depth),
    // not O(objects × directories), which a prefix of many tiny toc.dat made super-linear, S3-10)
    const dirSet = new Set(dirs.filter((d) => d !== ""));
    const members = new Map<string, StoredObject[]>();
    const inDir = new Set<StoredObject>();
    for (const o of objects) {
      const rel = relOf(o.key);
      for (let i = rel.indexOf("/"); i >= 0; i = rel.indexOf("/", i + 1)) {
        const d = rel.slice(0, i + 1);
        if (!dirSet.has(d)) continue;
        inDir.add(o);
        const list = members.get(d);
        if (list) list.push(o);
        else members.set(d, [o]);
      }
    }
    const wanted = dirs.filter((d) => {
      const rel = d.replace(/\/$/, "");
      if (!rel || (!cfg.recursive && rel.includes("/")) || filter.exclude(rel)) return false;
      return cfg.include === undefined || filter.include(rel);
    });
    // heads are one ranged GET each: a few at a time, directories and files alike
    const found: Backup[] = await inPool(wanted, (d) =>
      storedDirectory(cfg, storage, prefix + d, d.replace(/\/$/, ""), members.get(d) ?? [], ctx, findings),
    );
    const files = objects.filter((o) => {
      const rel = relOf(o.key);
      if (!rel || rel.endsWith("/") || (!cfg.recursive && rel.includes("/")) || inDir.has(o)) return false;
      return !filter.exclude(rel) && filter.include(rel);
    });
    for (const b of await inPool(files, (o) => storedBackup(cfg, storage, o, relOf(o.key), ctx, findings))) {
      const dump = detailOf(b, "dump");
      if (dump?.scope !== "cluster" || dump.clusterDatabases) found.push(b);
    }
    return found;
  } finally {
    storage.close();
  }
}

/** `fn` over `items`, HEAD_READERS at a time; results in the items' order. */
async function inPool<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(HEAD_READERS, items.length) }, worker));
  return out;
}

/** A directory-format dump: its toc.dat's head says what it is; its size is all its objects'. */
async function storedDirectory(
  cfg: DumpDirSourceConfig,
  storage: Storage,
  dirKey: string,
  rel: string,
  members: StoredObject[],
  ctx: SourceContext,
  findings: Finding[],
): Promise<Backup> {
  const toc = members.find((o) => o.key === `${dirKey}toc.dat`)!;
  const size = members.reduce((n, o) => n + o.sizeBytes, 0);
  const b = await storedBackup(cfg, storage, toc, rel, ctx, findings, (head) =>
    archive(head, "directory", size),
  );
  return {
    ...b,
    location: storage.describe(dirKey),
    stored: { storage: storage.name, key: dirKey, ...(toc.etag ? { etag: toc.etag } : {}) },
  };
}

async function storedBackup(
  cfg: DumpDirSourceConfig,
  storage: Storage,
  o: StoredObject,
  rel: string,
  ctx: SourceContext,
  findings: Finding[],
  detect: (head: Buffer) => Detected = (head) => detectFromHead(head, o.sizeBytes),
): Promise<Backup> {
  let d: Detected;
  try {
    d = detect(await storage.readRange(o.key, 0, HEAD_BYTES, ctx.signal ? { signal: ctx.signal } : {}));
  } catch (err) {
    // the store refused or failed: Attest could not look, which is not the backup's fault
    throw new Error(`cannot read the head of ${storage.describe(o.key)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  // the object's LastModified is the upload's time, not the dump's: only when nothing better exists
  const facts = dumpFacts(d, rel, rel.split("/").pop() ?? rel, () => o.lastModified);
  if (d.problem) {
    findings.push({
      source: cfg.name,
      series: facts.series,
      backupId: rel,
      kind: "unreadable",
      severity: "critical",
      message: `${rel}: ${d.problem}`,
    });
  }
  return {
    source: cfg.name,
    id: rel,
    ...facts,
    sizeBytes: o.sizeBytes,
    location: storage.describe(o.key),
    stored: { storage: storage.name, key: o.key, ...(o.etag ? { etag: o.etag } : {}) },
  };
}
