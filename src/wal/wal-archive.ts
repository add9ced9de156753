/** Reading a WAL archive directory: one readdir, one segment header, the history files. */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { readBackupFile } from "../util/backup-file.js";
import { describeError } from "../util/errors.js";
import { type HistoryEntry, parseHistory } from "./timeline-history.js";
import { readWalSegmentHeader, type WalSegmentHeader } from "./wal-header.js";
import { indexWalNames, type WalIndex } from "./wal-index.js";
import { DEFAULT_WAL_SEGMENT_SIZE, isValidSegmentSize, parseWalFileName } from "./wal-names.js";

const SEGMENT_NAME = /^[0-9A-F]{24}(\.(gz|lz4|zst))?$/;
/** A timeline history file holds a line per switch: far below this. */
const HISTORY_MAX_BYTES = 16 * 1024 * 1024;

/** A WAL archive as read from disk. */
export interface WalArchive {
  dir: string;
  index: WalIndex;
  /** Parsed history file of each timeline that has a readable one. */
  histories: Map<number, HistoryEntry[]>;
  /** Files that could not be read or parsed, with why. */
  problems: string[];
  /** Header of the newest segment (version, system id, segment size), when readable. */
  header?: WalSegmentHeader;
  /** Where the segment size came from. */
  segSizeFrom: "segment header" | "configuration" | "default";
  /** Full path of an archive file. */
  path(name: string): string;
  /** Modification time of an archive file (one stat), undefined when it is gone. */
  mtimeOf(name: string): Date | undefined;
}

/** Options of readWalArchive. */
export interface ReadWalArchiveOptions {
  /** Segment size to assume when no segment header is readable. */
  segSize?: number;
}

/** Reads the archive at `dir`: names, one header, history files. No per-segment reads. */
export async function readWalArchive(dir: string, opts: ReadWalArchiveOptions = {}): Promise<WalArchive> {
  const names = readdirSync(dir);
  const problems: string[] = [];
  let header: WalSegmentHeader | undefined;
  // The newest segment name sorts last regardless of the segment size; its header tells the size.
  let newest: string | undefined;
  for (const n of names) {
    if ((newest === undefined || n > newest) && SEGMENT_NAME.test(n)) newest = n;
  }
  if (newest) {
    try {
      header = await readWalSegmentHeader(
        join(dir, newest),
        parseWalFileName(newest, DEFAULT_WAL_SEGMENT_SIZE)?.compression,
      );
      if (!isValidSegmentSize(header.segSize)) throw new Error(`implausible segment size ${header.segSize}`);
    } catch (err) {
      problems.push(`${newest}: ${describeError(err)}`);
      header = undefined;
    }
  }
  const segSize = header?.segSize ?? opts.segSize ?? DEFAULT_WAL_SEGMENT_SIZE;
  const segSizeFrom = header ? "segment header" : opts.segSize ? "configuration" : "default";
  const index = indexWalNames(names, segSize);
  const histories = new Map<number, HistoryEntry[]>();
  for (const [tli, name] of index.histories) {
    try {
      const raw = readBackupFile(join(dir, name), HISTORY_MAX_BYTES);
      const text = (
        name.endsWith(".gz") ? gunzipSync(raw, { maxOutputLength: HISTORY_MAX_BYTES }) : raw
      ).toString("utf8");
      histories.set(tli, parseHistory(text));
    } catch (err) {
      problems.push(`${name}: ${describeError(err)}`);
    }
  }
  return {
    dir,
    index,
    histories,
    problems,
    ...(header ? { header } : {}),
    segSizeFrom,
    path: (name) => join(dir, name),
    mtimeOf: (name) => {
      try {
        return statSync(join(dir, name)).mtime;
      } catch {
        return undefined;
      }
    },
  };
}
