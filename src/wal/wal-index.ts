/** An index of a WAL archive's file names: which segments of which timeline exist. */
import { parseWalFileName, type WalFile } from "./wal-names.js";

/** The archive's names, sorted into what recovery can use. */
export interface WalIndex {
  segSize: number;
  /** Present segment numbers per timeline, ascending, each once. */
  segments: Map<number, number[]>;
  /** File name (with compression suffix) of each present segment, per timeline. */
  files: Map<number, Map<number, string>>;
  /** History file name per timeline. */
  histories: Map<number, string>;
  /** `.partial` segments: never used by recovery, listed for the record. */
  partials: WalFile[];
  /** Backup history files (`…00000028.backup`). */
  backupFiles: Extract<WalFile, { kind: "backup" }>[];
  /** Names that are no WAL file (temporary copies, notes). */
  other: string[];
  /** How many files carry a compression suffix. */
  compressed: number;
}

/** Indexes archive file names; pure string math, no file reads. */
export function indexWalNames(names: Iterable<string>, segSize: number): WalIndex {
  const files = new Map<number, Map<number, string>>();
  const idx: WalIndex = {
    segSize,
    segments: new Map(),
    files,
    histories: new Map(),
    partials: [],
    backupFiles: [],
    other: [],
    compressed: 0,
  };
  for (const name of names) {
    const f = parseWalFileName(name, segSize);
    if (!f) {
      idx.other.push(name);
      continue;
    }
    if (f.compression) idx.compressed++;
    switch (f.kind) {
      case "segment": {
        let m = files.get(f.tli);
        if (!m) {
          m = new Map();
          files.set(f.tli, m);
        }
        // an uncompressed copy wins over a compressed one of the same segment
        if (!m.has(f.segNo) || !f.compression) m.set(f.segNo, name);
        break;
      }
      case "partial":
        idx.partials.push(f);
        break;
      case "history":
        if (!idx.histories.has(f.tli) || !f.compression) idx.histories.set(f.tli, name);
        break;
      case "backup":
        idx.backupFiles.push(f);
        break;
    }
  }
  for (const [tli, m] of files) {
    const arr = Float64Array.from(m.keys()).sort();
    idx.segments.set(tli, Array.from(arr));
  }
  return idx;
}

/** Index of the first element of a sorted array that is >= `value`. */
export function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Whether segment `segNo` of timeline `tli` is present. */
export function hasSegment(idx: WalIndex, tli: number, segNo: number): boolean {
  return idx.files.get(tli)?.has(segNo) ?? false;
}

/** The newest present segment of a timeline. */
export function newestSegment(idx: WalIndex, tli: number): number | undefined {
  const s = idx.segments.get(tli);
  return s && s.length > 0 ? s[s.length - 1] : undefined;
}
