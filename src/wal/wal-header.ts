/** The long page header at the start of every WAL segment: version, system id, segment size. */
import { readDecompressedHead } from "./compression.js";
import type { WalCompression } from "./wal-names.js";

/** XLOG_PAGE_MAGIC of each major (xlog_internal.h); the WAL format changes with every major. */
const MAGIC_TO_MAJOR: ReadonlyMap<number, number> = new Map([
  [0xd097, 10],
  [0xd098, 11],
  [0xd101, 12],
  [0xd106, 13],
  [0xd10d, 14],
  [0xd110, 15],
  [0xd113, 16],
  [0xd116, 17],
  [0xd118, 18],
]);

const XLP_LONG_HEADER = 0x0002;

/** What a segment's first page says. */
export interface WalSegmentHeader {
  magic: number;
  /** Major that writes this magic, when known. */
  pgMajor?: number;
  tli: number;
  pageAddr: bigint;
  /** Database system identifier (pg_control), as a decimal string. */
  systemIdentifier: string;
  segSize: number;
  blockSize: number;
}

/** Parses the first 40 bytes of a segment; throws when they are not a long page header. */
export function parseWalSegmentHeader(buf: Buffer): WalSegmentHeader {
  if (buf.length < 40) throw new Error("shorter than a WAL page header");
  const magic = buf.readUInt16LE(0);
  const info = buf.readUInt16LE(2);
  if ((magic & 0xf000) !== 0xd000 || (info & XLP_LONG_HEADER) === 0) {
    throw new Error(`not a WAL segment (magic 0x${magic.toString(16)}, info 0x${info.toString(16)})`);
  }
  const major = MAGIC_TO_MAJOR.get(magic);
  return {
    magic,
    ...(major !== undefined ? { pgMajor: major } : {}),
    tli: buf.readUInt32LE(4),
    pageAddr: buf.readBigUInt64LE(8),
    systemIdentifier: buf.readBigUInt64LE(24).toString(),
    segSize: buf.readUInt32LE(32),
    blockSize: buf.readUInt32LE(36),
  };
}

/** Reads the header of a segment file, decompressing as needed. */
export async function readWalSegmentHeader(
  path: string,
  compression?: WalCompression,
): Promise<WalSegmentHeader> {
  return parseWalSegmentHeader(await readDecompressedHead(path, compression, 64));
}
