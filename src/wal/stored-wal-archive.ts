/**
 * A WAL archive kept in a store (a bucket prefix an `archive_command` or barman-cloud uploads to),
 * read from its listing into the same `WalArchive` the directory reader gives: names, upload times,
 * history files. Only history files (and, on request, the newest segment's first bytes) are read.
 */
import { gunzipSync } from "node:zlib";
import type { Storage, StoredObject } from "../storage/storage.js";
import { describeError } from "../util/errors.js";
import { parseHistory } from "./timeline-history.js";
import type { WalArchive } from "./wal-archive.js";
import { parseWalSegmentHeader, type WalSegmentHeader } from "./wal-header.js";
import { indexWalNames } from "./wal-index.js";
import { DEFAULT_WAL_SEGMENT_SIZE, isValidSegmentSize, parseWalFileName } from "./wal-names.js";

/** A stored WAL archive: the directory shape plus the object behind each name. */
export interface StoredWalArchive extends WalArchive {
  /** The listed object of each archive name (as the index names it). */
  objects: ReadonlyMap<string, StoredObject>;
}

/** Options of readStoredWalArchive. */
export interface ReadStoredWalArchiveOptions {
  /** Segment size to use when no header is read (configuration, a catalog). */
  segSize?: number;
  /** Where `segSize` came from when given. */
  segSizeFrom?: WalArchive["segSizeFrom"];
  /** Maps an object's base name to the archive name the index reads (strips a tool's suffix). */
  nameOf?: (base: string) => string;
  /** Read the newest uncompressed segment's first page for the segment size and system id. */
  readHeader?: boolean;
  signal?: AbortSignal;
}

/** The most a history file can sensibly hold (a line per timeline switch). */
const SMALL_OBJECT_BYTES = 1024 * 1024;

/** Reads the archive listed under `prefix` (every key below it, at any depth, by base name). */
export async function readStoredWalArchive(
  storage: Storage,
  prefix: string,
  opts: ReadStoredWalArchiveOptions = {},
): Promise<StoredWalArchive> {
  const call = opts.signal ? { signal: opts.signal } : {};
  const objects = new Map<string, StoredObject>();
  for await (const o of storage.list(prefix, call)) {
    const base = o.key.slice(o.key.lastIndexOf("/") + 1);
    if (base) objects.set(opts.nameOf ? opts.nameOf(base) : base, o);
  }
  const problems: string[] = [];
  let header: WalSegmentHeader | undefined;
  if (opts.readHeader) {
    // the newest segment name sorts last whatever the segment size; its header tells the size
    let newest: string | undefined;
    for (const n of objects.keys()) {
      const f = parseWalFileName(n, DEFAULT_WAL_SEGMENT_SIZE);
      if (f?.kind === "segment" && !f.compression && (newest === undefined || n > newest)) newest = n;
    }
    if (newest) {
      try {
        header = parseWalSegmentHeader(await storage.readRange(objects.get(newest)!.key, 0, 64, call));
        if (!isValidSegmentSize(header.segSize))
          throw new Error(`implausible segment size ${header.segSize}`);
      } catch (err) {
        problems.push(`${newest}: ${describeError(err)}`);
        header = undefined;
      }
    }
  }
  const segSize = header?.segSize ?? opts.segSize ?? DEFAULT_WAL_SEGMENT_SIZE;
  const segSizeFrom = header
    ? "segment header"
    : opts.segSize
      ? (opts.segSizeFrom ?? "configuration")
      : "default";
  const index = indexWalNames(objects.keys(), segSize);
  const histories: WalArchive["histories"] = new Map();
  for (const [tli, name] of index.histories) {
    const obj = objects.get(name)!;
    try {
      const text = await readStoredText(storage, obj.key, opts.signal);
      if (text === undefined) problems.push(`${obj.key}: compression Attest cannot read`);
      else histories.set(tli, parseHistory(text));
    } catch (err) {
      problems.push(`${obj.key}: ${describeError(err)}`);
    }
  }
  return {
    dir: storage.describe(prefix),
    index,
    histories,
    problems,
    ...(header ? { header } : {}),
    segSizeFrom,
    path: (name) => storage.describe(objects.get(name)?.key ?? `${prefix}${name}`),
    mtimeOf: (name) => objects.get(name)?.lastModified,
    objects,
  };
}

/**
 * A small text object (a history file, a backup history file): plain or gzip; undefined for a
 * compression Attest does not inflate in memory.
 */
export async function readStoredText(
  storage: Storage,
  key: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const raw = await storage.readRange(key, 0, SMALL_OBJECT_BYTES, signal ? { signal } : {});
  if (key.endsWith(".gz")) return gunzipSync(raw).toString("utf8");
  if (/\.(bz2|snappy|xz|zst|lz4)$/.test(key)) return undefined;
  return raw.toString("utf8");
}
