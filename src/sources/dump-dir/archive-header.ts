/**
 * Reads the header pg_dump writes at the start of a custom archive and of the `toc.dat` of
 * directory and tar archives, without running any tool: this also works for archives from a
 * newer pg_dump than the host's pg_restore understands.
 */

/** What the header says. */
export interface ArchiveHeader {
  /** Archive format version, e.g. "1.14.0". */
  version: string;
  format: "custom" | "tar" | "directory" | "unknown";
  /** Dump time as stored (the dumping host's wall clock, no zone), read as UTC. */
  createdAt?: Date;
  dbname?: string;
  /** Version string of the server that was dumped, e.g. "15.18 (Debian …)". */
  serverVersion?: string;
  /** Version string of pg_dump. */
  dumpVersion?: string;
}

/** A buffer that is not a pg_dump archive header. */
export class NotAnArchiveError extends Error {
  override readonly name = "NotAnArchiveError";
}

const FORMAT_CODES: Record<number, ArchiveHeader["format"]> = { 1: "custom", 3: "tar", 5: "directory" };

/** Parses an archive header from the first bytes of the file (4 KiB is plenty). */
export function parseArchiveHeader(buf: Buffer): ArchiveHeader {
  if (buf.length < 8 || buf.toString("latin1", 0, 5) !== "PGDMP") {
    throw new NotAnArchiveError("no PGDMP signature");
  }
  let pos = 5;
  const byte = () => {
    if (pos >= buf.length) throw new NotAnArchiveError("header is truncated");
    return buf[pos++]!;
  };
  const vmaj = byte();
  const vmin = byte();
  const vrev = vmaj > 1 || vmin > 0 ? byte() : 0;
  const intSize = byte();
  const offSize = byte();
  if (intSize < 1 || intSize > 8 || offSize < 1 || offSize > 8)
    throw new NotAnArchiveError("implausible integer sizes");
  const format = FORMAT_CODES[byte()] ?? "unknown";
  const ver = (a: number, b: number) => vmaj > a || (vmaj === a && vmin >= b);
  const readInt = () => {
    const sign = byte();
    let v = 0;
    for (let i = 0; i < intSize; i++) v += byte() * 2 ** (8 * i);
    return sign ? -v : v;
  };
  const readStr = (): string | undefined => {
    const len = readInt();
    if (len < 0) return undefined;
    if (len > 4096 || pos + len > buf.length)
      throw new NotAnArchiveError("header string is truncated or implausible");
    const s = buf.toString("utf8", pos, pos + len);
    pos += len;
    return s;
  };
  const header: ArchiveHeader = { version: `${vmaj}.${vmin}.${vrev}`, format };
  if (ver(1, 15))
    byte(); // compression algorithm
  else if (ver(1, 4)) readInt(); // compression level
  if (ver(1, 4)) {
    const [sec, min, hour, mday, mon, year] = [
      readInt(),
      readInt(),
      readInt(),
      readInt(),
      readInt(),
      readInt(),
    ];
    readInt(); // isdst
    const d = new Date(Date.UTC(year + 1900, mon, mday, hour, min, sec));
    if (!Number.isNaN(d.getTime())) header.createdAt = d;
    header.dbname = readStr();
  }
  if (ver(1, 10)) {
    header.serverVersion = readStr();
    header.dumpVersion = readStr();
  }
  return header;
}

/** The major version in a version string: "15.18 (Debian…)" → 15, "9.6.24" → 9.6 as 9. */
export function majorOfVersion(version: string | undefined): number | undefined {
  const m = /^(\d+)(?:\.(\d+))?/.exec(version?.trim() ?? "");
  if (!m) return undefined;
  return Number(m[1]);
}

/** A timestamp in a file name (`app_20261120T0300.dump`, `2026-11-20-daily`), read as UTC. */
export function timestampFromName(name: string): Date | undefined {
  const m = /(\d{4})-?(\d{2})-?(\d{2})(?:[T_-]?(\d{2}):?(\d{2})(?::?(\d{2}))?)?/.exec(name);
  if (!m) return undefined;
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0)));
  return Number.isNaN(d.getTime()) || +m[2]! > 12 || +m[3]! > 31 ? undefined : d;
}

/** A series name from a file name: the name without extensions and date stamps. */
export function seriesFromName(name: string): string {
  const base = name.replace(/(\.(sql|gz|bz2|xz|zst|lz4|dump|custom|backup|pgdump|tar|dir|bak))+$/i, "");
  const cleaned = base
    .replace(/[_.-]?\d{4}-?\d{2}-?\d{2}(?:[T_-]?\d{2}:?\d{2}(?::?\d{2})?)?Z?/g, "")
    .replace(/^[_.-]+|[_.-]+$/g, "");
  return cleaned || base;
}
