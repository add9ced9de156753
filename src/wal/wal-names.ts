/** WAL positions and file names: pure string and integer math, no file access. */

/** The segment size of a default build (initdb --wal-segsize changes it per cluster). */
export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;

/** Compression suffixes an archive may add to a file name. */
export const WAL_COMPRESSIONS = ["gz", "lz4", "zst"] as const;
/** A compression suffix. */
export type WalCompression = (typeof WAL_COMPRESSIONS)[number];

/** What a file in a WAL archive is. */
export type WalFile =
  | { kind: "segment"; name: string; tli: number; segNo: number; compression?: WalCompression }
  | { kind: "partial"; name: string; tli: number; segNo: number; compression?: WalCompression }
  | { kind: "history"; name: string; tli: number; compression?: WalCompression }
  | {
      kind: "backup";
      name: string;
      tli: number;
      segNo: number;
      offset: number;
      compression?: WalCompression;
    };

/** Parses `X/Y` into a 64-bit position. */
export function parseLsn(text: string): bigint {
  const m = /^\s*([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})\s*$/.exec(text);
  if (!m) throw new Error(`"${text}" is not an LSN (X/Y in hex)`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** Prints a 64-bit position as PostgreSQL does (`0/1500028`). */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Whether `size` is a segment size PostgreSQL allows (a power of two, 1 MiB to 1 GiB). */
export function isValidSegmentSize(size: number): boolean {
  return Number.isInteger(size) && size >= 1 << 20 && size <= 1 << 30 && (size & (size - 1)) === 0;
}

function segmentsPerId(segSize: number): number {
  return 0x100000000 / segSize;
}

/** The segment number holding `lsn`. */
export function segmentOfLsn(lsn: bigint, segSize: number): number {
  return Number(lsn / BigInt(segSize));
}

/** The first position of segment `segNo`. */
export function segmentStartLsn(segNo: number, segSize: number): bigint {
  return BigInt(segNo) * BigInt(segSize);
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, "0");

/** The file name of segment `segNo` on timeline `tli`. */
export function segmentName(tli: number, segNo: number, segSize: number): string {
  const per = segmentsPerId(segSize);
  return hex8(tli) + hex8(Math.floor(segNo / per)) + hex8(segNo % per);
}

/** The file name of a timeline's history file. */
export function historyFileName(tli: number): string {
  return `${hex8(tli)}.history`;
}

function isHex(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 70))) return false;
  }
  return true;
}

/** Splits a trailing compression suffix off a name. */
function splitCompression(name: string): { base: string; compression?: WalCompression } {
  const dot = name.lastIndexOf(".");
  if (dot > 0) {
    const ext = name.slice(dot + 1);
    if (ext === "gz" || ext === "lz4" || ext === "zst") return { base: name.slice(0, dot), compression: ext };
  }
  return { base: name };
}

/**
 * Classifies an archive file name; undefined for anything else (temporary files, notes).
 * Names only: 100,000 names parse in a few tens of milliseconds.
 */
export function parseWalFileName(name: string, segSize: number): WalFile | undefined {
  const { base, compression } = splitCompression(name);
  const c = compression ? { compression } : {};
  if (base.length === 24 && isHex(base, 0, 24)) {
    const tli = Number.parseInt(base.slice(0, 8), 16);
    const segNo =
      Number.parseInt(base.slice(8, 16), 16) * segmentsPerId(segSize) + Number.parseInt(base.slice(16), 16);
    return { kind: "segment", name, tli, segNo, ...c };
  }
  if (base.length === 32 && base.endsWith(".partial") && isHex(base, 0, 24)) {
    const tli = Number.parseInt(base.slice(0, 8), 16);
    const segNo =
      Number.parseInt(base.slice(8, 16), 16) * segmentsPerId(segSize) +
      Number.parseInt(base.slice(16, 24), 16);
    return { kind: "partial", name, tli, segNo, ...c };
  }
  if (base.length === 16 && base.endsWith(".history") && isHex(base, 0, 8)) {
    return { kind: "history", name, tli: Number.parseInt(base.slice(0, 8), 16), ...c };
  }
  if (
    base.length === 40 &&
    base.endsWith(".backup") &&
    base[24] === "." &&
    isHex(base, 0, 24) &&
    isHex(base, 25, 33)
  ) {
    const tli = Number.parseInt(base.slice(0, 8), 16);
    const segNo =
      Number.parseInt(base.slice(8, 16), 16) * segmentsPerId(segSize) +
      Number.parseInt(base.slice(16, 24), 16);
    return { kind: "backup", name, tli, segNo, offset: Number.parseInt(base.slice(25, 33), 16), ...c };
  }
  return undefined;
}
