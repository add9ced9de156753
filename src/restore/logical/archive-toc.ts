/**
 * Reads the table of contents of a pg_dump archive (custom, directory, tar) without running any
 * tool, to check the one statement of it that `pg_restore --schema-only` never shows: each data
 * entry's `copyStmt`, which pg_restore sends to the server as is. pg_dump writes exactly
 * `COPY <table> (<columns>) FROM stdin;`; anything else (`FROM PROGRAM`, a second statement) is an
 * edited archive, refused before anything of it runs.
 */
import { closeSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { ArchiveReader, readArchiveHeader } from "../../sources/dump-dir/archive-header.js";
import { openBackupFile } from "../../util/backup-file.js";
import { BackupDefectError } from "../../util/errors.js";

/** Tablespaces the archive's entries are placed in (each entry's tablespace field). */
export function readTocTablespaces(path: string, format: string): Set<string> {
  const seen = new Set<string>();
  for (const e of readToc(path, format)) if (e.tablespace) seen.add(e.tablespace);
  return seen;
}

/** One data entry of the TOC: its description, table and copy statement. */
export interface TocCopyEntry {
  dumpId: number;
  desc: string;
  namespace?: string;
  tag: string;
  copyStmt: string;
}

/** The TOC could not be read as pg_dump writes it. */
export class TocFormatError extends Error {
  override readonly name = "TocFormatError";
}

/** Largest TOC read (schemas with very many objects have TOCs of tens of MB). */
const MAX_TOC_BYTES = 512 * 1024 * 1024;

class NeedMore extends Error {}

/** What the reader keeps of every TOC entry (strings hold the archive's bytes, one char each: latin1). */
export interface TocEntry {
  dumpId: number;
  desc: string;
  tag: string;
  copyStmt?: string | undefined;
  namespace?: string | undefined;
  tablespace?: string | undefined;
  /** The SQL pg_restore runs for the entry. */
  defn?: string | undefined;
  /** The entry's owner (pg_restore makes it the owner of entries that have a drop statement). */
  owner?: string | undefined;
  /** Whether the entry has a drop statement (data entries have none). */
  droppable?: boolean;
  /** Directory and tar archives: the file or member holding the entry's data. */
  file?: string | undefined;
  /** Custom archives: whether the entry has data, and where it starts when pg_dump recorded it. */
  data?: { state: "none" | "unknown-offset" | "at"; offset: number } | undefined;
}

/** Parses header + TOC from `buf`; throws NeedMore when `buf` ends inside them. */
function parse(buf: Buffer): TocEntry[] {
  if (buf.length >= 5 && buf.toString("latin1", 0, 5) !== "PGDMP")
    throw new TocFormatError("no PGDMP signature");
  const r = new ArchiveReader(buf, () => new NeedMore());
  const header = readArchiveHeader(r);
  if (!r.ver(1, 7)) throw new TocFormatError(`archive version ${header.version} is older than this reader`);
  const count = r.int();
  if (count < 0 || count > 50_000_000) throw new TocFormatError(`implausible TOC entry count ${count}`);
  const out: TocEntry[] = [];
  for (let i = 0; i < count; i++) {
    const dumpId = r.int();
    r.int(); // hadDumper
    if (r.ver(1, 8)) r.str(); // tableoid
    r.str(); // oid
    const tag = r.str() ?? "";
    const desc = r.str() ?? "";
    if (r.ver(1, 11)) r.int(); // section
    const defn = r.str();
    const droppable = Boolean(r.str()); // dropStmt
    const copyStmt = r.ver(1, 3) ? r.str() : undefined;
    const namespace = r.ver(1, 6) ? r.str() : undefined;
    const tablespace = r.ver(1, 10) ? r.str() : undefined;
    if (r.ver(1, 14)) r.str(); // tableam
    if (r.ver(1, 16)) r.int(); // relkind
    const owner = r.str();
    if (r.ver(1, 9)) r.str(); // withOids
    if (r.ver(1, 5)) while (r.str() !== undefined); // dependencies, NULL-terminated
    let file: string | undefined;
    let data: TocEntry["data"];
    if (header.format === "custom") {
      // the data offset: a flag byte (1 not recorded, 2 recorded, 3 no data) then offSize bytes
      const flag = r.byte();
      let offset = 0;
      for (let k = 0; k < r.offSize; k++) offset += r.byte() * 2 ** (8 * k);
      data = { state: flag === 3 ? "none" : flag === 2 ? "at" : "unknown-offset", offset };
    } else {
      file = r.str(); // directory and tar: the entry's data file name
    }
    out.push({ dumpId, desc, tag, copyStmt, namespace, tablespace, defn, owner, droppable, file, data });
  }
  return out;
}

/** Reads `len` bytes of `file` from `offset`. */
function readBytes(file: string, offset: number, len: number): Buffer {
  // a FIFO or device in the archive's place would block Attest for good: a regular file only
  const fd = openBackupFile(file, { follow: true });
  try {
    const buf = Buffer.alloc(len);
    const n = readSync(fd, buf, 0, len, offset);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Where the TOC of an archive starts: the file (custom), toc.dat (directory), its tar member (tar). */
function tocLocation(path: string, format: string): { file: string; offset: number; size: number } {
  if (format === "directory") {
    const file = join(path, "toc.dat");
    return { file, offset: 0, size: statSync(file).size };
  }
  const size = statSync(path).size;
  if (format === "tar") {
    // pg_dump writes toc.dat as the first member: its data starts after one 512-byte header
    const head = readBytes(path, 0, 512);
    const name = head.toString("latin1", 0, 100).replace(/\0.*$/s, "");
    if (name !== "toc.dat")
      throw new TocFormatError(`first tar member is ${JSON.stringify(name)}, not toc.dat`);
    const memberSize = Number.parseInt(
      head.toString("latin1", 124, 136).replace(/\0.*$/s, "").trim() || "0",
      8,
    );
    return { file: path, offset: 512, size: Math.min(memberSize, size - 512) };
  }
  return { file: path, offset: 0, size };
}

/** The data entries of an archive's TOC with their copy statements. */
export function readTocCopyEntries(path: string, format: string): TocCopyEntry[] {
  return readToc(path, format).flatMap((e) =>
    e.copyStmt
      ? [
          {
            dumpId: e.dumpId,
            desc: e.desc,
            tag: e.tag,
            copyStmt: e.copyStmt,
            ...(e.namespace !== undefined ? { namespace: e.namespace } : {}),
          },
        ]
      : [],
  );
}

/** Every entry of an archive's TOC, as far as this reader keeps it; throws when it cannot read it. */
export function readToc(path: string, format: string): TocEntry[] {
  const loc = tocLocation(path, format);
  let len = Math.min(loc.size, 1 << 20);
  for (;;) {
    try {
      return parse(readBytes(loc.file, loc.offset, len));
    } catch (err) {
      if (!(err instanceof NeedMore)) throw err;
      if (len >= loc.size) throw new TocFormatError("the archive ends inside its table of contents");
      if (len >= MAX_TOC_BYTES)
        throw new TocFormatError(`table of contents larger than ${MAX_TOC_BYTES} bytes`);
      len = Math.min(loc.size, len * 4, MAX_TOC_BYTES);
    }
  }
}

const IDENT = String.raw`(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*|"(?:[^"]|"")+")`;
/** `COPY table (col, …) FROM stdin;` exactly as pg_dump writes it (schema-qualified or not). */
const PG_DUMP_COPY = new RegExp(
  String.raw`^COPY ${IDENT}(?:\.${IDENT})?(?: \(${IDENT}(?:, ${IDENT})*\))? FROM stdin;\n?$`,
);

/** Whether a copy statement is one pg_dump writes. */
export function isPgDumpCopy(stmt: string): boolean {
  return PG_DUMP_COPY.test(stmt);
}

/** The first data entry whose copy statement pg_dump would not have written, if any. */
export function foreignCopyStatement(path: string, format: string): TocCopyEntry | undefined {
  return readTocCopyEntries(path, format).find((e) => !isPgDumpCopy(e.copyStmt));
}

/**
 * Why an archive must not be restored, judged from its TOC alone: an edited copy statement, or a
 * TOC that ends early (a cut-off archive). Undefined when the TOC is as pg_dump writes it, or is
 * of a version this reader does not know (pg_restore then judges it).
 */
export function tocProblem(path: string, format: string, id: string): BackupDefectError | undefined {
  try {
    const foreign = foreignCopyStatement(path, format);
    if (!foreign) return undefined;
    const what = `${foreign.desc} ${foreign.namespace ? `${foreign.namespace}.` : ""}${foreign.tag}`;
    const stmt = foreign.copyStmt.replace(/\s+/g, " ").trim().slice(0, 120);
    return new BackupDefectError(
      `${id}: the archive's TOC entry ${foreign.dumpId} (${what}) loads its data with a statement pg_dump never writes (${stmt}); refused before anything ran`,
    );
  } catch (err) {
    if (err instanceof TocFormatError && /ends inside/.test(err.message))
      return new BackupDefectError(`${id}: ${err.message} (cut off)`);
    return undefined;
  }
}
