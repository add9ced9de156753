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

/**
 * Reads pg_dump's archive integers (a sign byte, then intSize bytes, little-endian) and strings
 * (an integer length, -1 for none, then the bytes) from a buffer, as pg_restore's ReadInt and
 * ReadStr do. `short` makes the error for a buffer that ends too early.
 */
export class ArchiveReader {
  pos = 0;
  intSize = 4;
  offSize = 8;
  vmaj = 0;
  vmin = 0;

  constructor(
    readonly buf: Buffer,
    readonly short: () => Error,
  ) {}

  byte(): number {
    if (this.pos >= this.buf.length) throw this.short();
    return this.buf[this.pos++]!;
  }

  int(): number {
    const sign = this.byte();
    let v = 0;
    for (let i = 0; i < this.intSize; i++) v += this.byte() * 2 ** (8 * i);
    return sign ? -v : v;
  }

  /** A string; `max` bounds a plausible length (a larger one is not an archive). */
  str(encoding: BufferEncoding = "latin1", max = Number.POSITIVE_INFINITY): string | undefined {
    const len = this.int();
    if (len < 0) return undefined;
    if (len > max) throw new NotAnArchiveError("header string is implausible");
    if (this.pos + len > this.buf.length) throw this.short();
    const s = this.buf.toString(encoding, this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  /** Skips `n` bytes. */
  skip(n: number): void {
    if (this.pos + n > this.buf.length) throw this.short();
    this.pos += n;
  }

  /** Whether the archive's version is at least a.b. */
  ver(a: number, b: number): boolean {
    return this.vmaj > a || (this.vmaj === a && this.vmin >= b);
  }
}

/** Reads the header from the start of `r`'s buffer, leaving `r` at the first byte after it. */
export function readArchiveHeader(r: ArchiveReader): ArchiveHeader {
  if (r.buf.length < 8 || r.buf.toString("latin1", 0, 5) !== "PGDMP") {
    throw new NotAnArchiveError("no PGDMP signature");
  }
  r.pos = 5;
  r.vmaj = r.byte();
  r.vmin = r.byte();
  const vrev = r.vmaj > 1 || r.vmin > 0 ? r.byte() : 0;
  r.intSize = r.byte();
  r.offSize = r.byte();
  if (r.intSize < 1 || r.intSize > 8 || r.offSize < 1 || r.offSize > 8)
    throw new NotAnArchiveError("implausible integer sizes");
  const format = FORMAT_CODES[r.byte()] ?? "unknown";
  const header: ArchiveHeader = { version: `${r.vmaj}.${r.vmin}.${vrev}`, format };
  if (r.ver(1, 15))
    r.byte(); // compression algorithm
  else if (r.ver(1, 4)) r.int(); // compression level
  if (r.ver(1, 4)) {
    const [sec, min, hour, mday, mon, year] = [r.int(), r.int(), r.int(), r.int(), r.int(), r.int()];
    r.int(); // isdst
    const d = new Date(Date.UTC(year + 1900, mon, mday, hour, min, sec));
    if (!Number.isNaN(d.getTime())) header.createdAt = d;
    header.dbname = r.str("utf8", 4096);
  }
  if (r.ver(1, 10)) {
    header.serverVersion = r.str("utf8", 4096);
    header.dumpVersion = r.str("utf8", 4096);
  }
  return header;
}

/** Parses an archive header from the first bytes of the file (4 KiB is plenty). */
export function parseArchiveHeader(buf: Buffer): ArchiveHeader {
  return readArchiveHeader(new ArchiveReader(buf, () => new NotAnArchiveError("header is truncated")));
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
