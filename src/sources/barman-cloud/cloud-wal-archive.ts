/**
 * A barman-cloud WAL archive (`<server>/wals/<timeline+log>/<segment>[.gz|.bz2|…]`) read from its
 * listing, as the WAL continuity code reads a directory: names, upload times, history files.
 * No segment is downloaded; the segment size comes from the backups' backup.info.
 */
import type { Storage } from "../../storage/storage.js";
import { readStoredWalArchive } from "../../wal/stored-wal-archive.js";
import type { WalArchive } from "../../wal/wal-archive.js";

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
  return readStoredWalArchive(storage, prefix, {
    segSize,
    nameOf: (base) => base.replace(COMPRESSED, ""),
    ...(signal ? { signal } : {}),
  });
}

/** A small object's bytes (history files, backup.info: a few KiB; 1 MiB at most). */
export async function readWhole(storage: Storage, key: string, signal?: AbortSignal): Promise<Buffer> {
  return storage.readRange(key, 0, 1024 * 1024, signal ? { signal } : {});
}
