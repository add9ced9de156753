/**
 * A barman-cloud WAL archive (`<server>/wals/<timeline+log>/<segment>[.gz|.bz2|…]`) read from its
 * listing, as the WAL continuity code reads a directory: names, upload times, history files.
 * No segment is downloaded; the segment size comes from the backups' backup.info.
 */
import { gunzipSync } from "node:zlib";
import type { Storage } from "../../storage/storage.js";
import { describeError } from "../../util/errors.js";
import { parseHistory } from "../../wal/timeline-history.js";
import type { WalArchive } from "../../wal/wal-archive.js";
import { indexWalNames } from "../../wal/wal-index.js";

/** barman-cloud-wal-archive's compressions (3.4: gzip, bzip2, snappy; later xz, zstd, lz4). */
const COMPRESSED = /\.(gz|bz2|snappy|xz|zst|lz4)$/;

/** Reads the WAL listing under `prefix` (ending in `wals/`); `segSize` from backup.info. */
export async function readCloudWalArchive(
  storage: Storage,
  prefix: string,
  segSize: number,
  signal?: AbortSignal,
): Promise<WalArchive> {
  // WAL names without barman's compression suffix, each to its object
  const objects = new Map<string, { key: string; lastModified: Date }>();
  for await (const o of storage.list(prefix, signal ? { signal } : {})) {
    const base = o.key.slice(o.key.lastIndexOf("/") + 1);
    objects.set(base.replace(COMPRESSED, ""), { key: o.key, lastModified: o.lastModified });
  }
  const index = indexWalNames(objects.keys(), segSize);
  const histories: WalArchive["histories"] = new Map();
  const problems: string[] = [];
  for (const [tli, name] of index.histories) {
    const obj = objects.get(name)!;
    try {
      const raw = await readWhole(storage, obj.key, signal);
      if (obj.key.endsWith(".gz")) histories.set(tli, parseHistory(gunzipSync(raw).toString("utf8")));
      else if (COMPRESSED.test(obj.key)) problems.push(`${obj.key}: compression Attest cannot read`);
      else histories.set(tli, parseHistory(raw.toString("utf8")));
    } catch (err) {
      problems.push(`${obj.key}: ${describeError(err)}`);
    }
  }
  return {
    dir: storage.describe(prefix),
    index,
    histories,
    problems,
    segSizeFrom: "configuration",
    path: (name) => storage.describe(objects.get(name)?.key ?? `${prefix}${name}`),
    mtimeOf: (name) => objects.get(name)?.lastModified,
  };
}

/** A small object's bytes (history files, backup.info: a few KiB; 1 MiB at most). */
export async function readWhole(storage: Storage, key: string, signal?: AbortSignal): Promise<Buffer> {
  return storage.readRange(key, 0, 1024 * 1024, signal ? { signal } : {});
}
