/**
 * Checks a pg_dump archive against its own table of contents: every data entry (TABLE DATA,
 * BLOBS) must have all of its data in the archive before pg_restore runs, and pg_restore must
 * report each one restored. pg_restore alone misses some cuts: it loads a directory dump's
 * uncompressed data file cut at a line boundary without a word, restores a tar archive cut after
 * its last data member, and spins forever on a tar archive cut inside a member it seeks.
 */
import { closeSync, existsSync, lstatSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { openBackupFile } from "../../util/backup-file.js";
import { BackupDefectError } from "../../util/errors.js";
import { readToc, type TocEntry } from "./archive-toc.js";

/** TOC entries that carry data pg_restore loads. */
const DATA_DESCS = new Set(["TABLE DATA", "BLOBS"]);

/** What a dump holds, from its TOC. */
export type DumpContent = "full" | "schema-only" | "data-only";

/** A data entry named for a reason: `TABLE DATA sales.orders` (TOC entry 3624). */
export function describeEntry(e: TocEntry): string {
  const name = asOutput(`${e.namespace ? `${e.namespace}.` : ""}${e.tag}`);
  const what = e.desc === "TABLE DATA" ? `table ${name}` : e.desc;
  return `${what} (TOC entry ${e.dumpId})`;
}

/** The data entries of a TOC. */
export function dataEntries(toc: readonly TocEntry[]): TocEntry[] {
  return toc.filter((e) => DATA_DESCS.has(e.desc));
}

/** What a `--data-only` dump's TOC holds besides data: settings, and large objects' own entries. */
const DATA_ONLY_DESCS = new Set([
  ...DATA_DESCS,
  "SEQUENCE SET",
  "BLOB",
  "BLOB METADATA",
  "ACL",
  "COMMENT",
  "SECURITY LABEL",
  "ENCODING",
  "STDSTRINGS",
  "SEARCHPATH",
  "DATABASE",
]);

/**
 * Whether a TOC is of a `--schema-only` dump (no data entries), a `--data-only` dump (data
 * entries and nothing that defines a schema object) or a full one.
 */
export function dumpContent(toc: readonly TocEntry[]): DumpContent {
  const hasData = toc.some((e) => DATA_DESCS.has(e.desc) || e.desc === "SEQUENCE SET");
  if (!hasData) return "schema-only";
  return toc.every((e) => DATA_ONLY_DESCS.has(e.desc)) ? "data-only" : "full";
}

/** The content of an archive, or undefined when its TOC cannot be read (pg_restore judges it). */
export function archiveContent(path: string, format: string): DumpContent | undefined {
  try {
    return dumpContent(readToc(path, format));
  } catch {
    return undefined;
  }
}

function readAt(file: string, offset: number, len: number, opts: { follow?: boolean } = {}): Buffer {
  // a FIFO or device in the backup's place would block or never end: a regular file only
  const fd = openBackupFile(file, opts);
  try {
    const buf = Buffer.alloc(len);
    return buf.subarray(0, readSync(fd, buf, 0, len, offset));
  } finally {
    closeSync(fd);
  }
}

/** pg_dump ends every table's COPY data with the `\.` line (then blank lines). */
function endsWithCopyTerminator(tail: Buffer): boolean {
  return /(?:^|\n)\\\.\n*$/.test(tail.toString("latin1"));
}

/** A tar member: where its data starts, how long it says it is, whether all of it is there. */
interface TarMember {
  start: number;
  size: number;
  complete: boolean;
}

/** The members of a tar file and whether it ends with the end-of-archive block. */
function tarMembers(path: string): { members: Map<string, TarMember>; ended: boolean } {
  const fileSize = statSync(path).size;
  const members = new Map<string, TarMember>();
  const fd = openBackupFile(path, { follow: true });
  try {
    const head = Buffer.alloc(512);
    for (let pos = 0; pos + 512 <= fileSize; ) {
      if (readSync(fd, head, 0, 512, pos) < 512) break;
      if (head.every((b) => b === 0)) return { members, ended: true };
      const name = head.toString("latin1", 0, 100).replace(/\0.*$/s, "");
      const size = Number.parseInt(head.toString("latin1", 124, 136).replace(/\0.*$/s, "").trim() || "0", 8);
      if (!Number.isFinite(size) || size < 0) break;
      const start = pos + 512;
      members.set(name, { start, size, complete: start + size <= fileSize });
      pos = start + Math.ceil(size / 512) * 512;
    }
  } finally {
    closeSync(fd);
  }
  return { members, ended: false };
}

function defect(id: string, what: string): BackupDefectError {
  return new BackupDefectError(`${id}: archive cut off or damaged: ${what} (checked against its TOC)`);
}

/** The first data entry of a directory dump whose data file is missing or visibly cut. */
function directoryProblem(dir: string, entries: TocEntry[], id: string): BackupDefectError | undefined {
  for (const e of entries) {
    if (!e.file) return defect(id, `${describeEntry(e)} names no data file`);
    // pg_dump names each data file by its dump id: a path (../…) would have Attest, as root,
    // look at a file of the host's instead
    if (/[/\0]/.test(e.file) || e.file === "." || e.file === "..")
      return defect(
        id,
        `${describeEntry(e)} names a data file outside the archive (${JSON.stringify(e.file)})`,
      );
    const plain = join(dir, e.file);
    const compressed = [".gz", ".lz4", ".zst"].map((x) => plain + x).find((p) => existsSync(p));
    if (existsSync(plain)) {
      if (e.desc !== "TABLE DATA") continue;
      if (!lstatSync(plain).isFile())
        return defect(id, `the data file ${e.file} of ${describeEntry(e)} is not a regular file`);
      const size = statSync(plain).size;
      const tail = readAt(plain, Math.max(0, size - 64), 64);
      if (!endsWithCopyTerminator(tail))
        return defect(
          id,
          `the data file ${e.file} of ${describeEntry(e)} ends without pg_dump's end-of-data line`,
        );
    } else if (compressed) {
      // a compressed stream cut anywhere is refused by pg_restore; an empty file would read as no rows
      if (statSync(compressed).size < 18)
        return defect(id, `the data file ${e.file} of ${describeEntry(e)} is cut short`);
    } else {
      return defect(id, `the data file ${e.file} of ${describeEntry(e)} is missing`);
    }
  }
  return undefined;
}

/** The first data entry of a tar archive whose member is missing or cut, or a tar cut after them. */
function tarProblem(path: string, entries: TocEntry[], id: string): BackupDefectError | undefined {
  const { members, ended } = tarMembers(path);
  for (const e of entries) {
    // a tar archive keeps its large objects under blobs.toc, whatever the TOC names
    const name = e.desc === "BLOBS" ? "blobs.toc" : e.file;
    const m = name ? members.get(name) : undefined;
    if (!m) return defect(id, `the member ${name ?? "(none)"} holding ${describeEntry(e)} is missing`);
    if (!m.complete) return defect(id, `the archive ends inside the member ${name} of ${describeEntry(e)}`);
    if (e.desc === "TABLE DATA" && e.file?.endsWith(".dat")) {
      const tail = readAt(path, m.start + Math.max(0, m.size - 64), Math.min(64, m.size), { follow: true });
      if (!endsWithCopyTerminator(tail))
        return defect(
          id,
          `the member ${e.file} of ${describeEntry(e)} ends without pg_dump's end-of-data line`,
        );
    }
  }
  if (!ended) return defect(id, "the tar archive ends without its end-of-archive blocks");
  return undefined;
}

/**
 * A custom archive cut short: data entries whose recorded offset lies past the file's end are
 * missing, and the cut falls inside the data of the entry that starts last before it.
 */
function customProblem(path: string, entries: TocEntry[], id: string): BackupDefectError | undefined {
  const size = statSync(path).size;
  const placed = entries.filter((e) => e.data?.state === "at");
  const past = placed.filter((e) => e.data!.offset >= size);
  if (past.length === 0) return undefined;
  const inside = placed
    .filter((e) => e.data!.offset < size)
    .sort((x, y) => y.data!.offset - x.data!.offset)[0];
  const lost = past.slice(0, 3).map(describeEntry).join(", ") + (past.length > 3 ? ", …" : "");
  return defect(
    id,
    `${inside ? `the file ends inside the data of ${describeEntry(inside)}; ` : ""}${past.length} data entr${past.length === 1 ? "y lies" : "ies lie"} wholly past its end: ${lost}`,
  );
}

/**
 * Why an archive's data is incomplete, judged from its TOC and the files or members it names;
 * undefined when every data entry's data is there in full (or the TOC cannot be read: then
 * pg_restore judges the archive, and `tocProblem` has said whether the TOC itself is cut).
 */
export function archiveDataProblem(path: string, format: string, id: string): BackupDefectError | undefined {
  let entries: TocEntry[];
  try {
    entries = dataEntries(readToc(path, format));
  } catch {
    return undefined;
  }
  if (format === "directory") return directoryProblem(path, entries, id);
  if (format === "tar") return tarProblem(path, entries, id);
  if (format === "custom") return customProblem(path, entries, id);
  return undefined;
}

/**
 * What pg_restore --verbose says while it works, as the message itself reads: it never names a
 * problem. Matched on the message, not its prefix, because with -j the prefix may be another
 * worker's (see RestoredData.line).
 */
const PROGRESS =
  /^(?:connecting to (?:database for restore|new database)|dropping |creating |processing (?:item|missed item|data for table|BLOBS)|executing |launching item|finished item|finished main parallel loop|entering (?:main parallel loop|restore_toc_entries_)|skipping item|setting owner and privileges|disabling triggers|enabling triggers|implied data-only restore|restoring large object|restored \d+ large objects?$)/;

/** The prefix fragments pg_restore writes before a message, each a write of its own. */
const PREFIX_PARTS = /^(?:pg_restore:| |error: |warning: |detail: |hint: )*/;

/**
 * The first line of a problem tail that names the problem: not a worker's death, nor the TOC
 * entry or the command it happened in. A line with a level comes first.
 */
export function firstProblem(tail: string): string | undefined {
  const lines = tail
    .split("\n")
    .map((l) => l.trim())
    .filter(
      (l) =>
        l &&
        l !== "…" &&
        !/worker process died unexpectedly|while PROCESSING TOC|from TOC entry|^Command was:/.test(l),
    );
  return lines.find((l) => /\berror: /.test(l)) ?? lines[0];
}

/** How many of the first and of the last problem lines are kept. */
const FIRST_PROBLEMS = 4;
const LAST_PROBLEMS = 8;

/**
 * Collects what `pg_restore --verbose` says it processed, to compare with the TOC once it has
 * exited 0, and keeps the lines that are not progress (errors, warnings, the server's messages)
 * so the progress lines never crowd a failure's reason out: the first few, where the cause
 * usually is, and the last few, where pg_restore says how it ended.
 */
export class RestoredData {
  readonly #tables = new Map<string, number>();
  #blobs = 0;
  readonly #first: string[] = [];
  readonly #last: string[] = [];
  #dropped = 0;
  /** Levels seen on another message's line, whose own message is still to come. */
  #strayLevels = 0;

  /** Feeds one line of pg_restore's standard error. */
  line(l: string): void {
    // with -j, pg_restore's workers write "pg_restore:", " ", the level ("error: ") and the
    // message in separate writes to one pipe, so one worker's prefix may land on another's line
    // and a message may stand alone: a line is judged by the message that ends it (each message
    // is one write, never split), and its prefix says nothing of whose level it was
    const message = l.replace(PREFIX_PARTS, "");
    const prefix = l.slice(0, l.length - message.length);
    const leveled = /error: |warning: |detail: |hint: /.test(prefix);
    const table = /^processing data for table "(.*)"$/.exec(message);
    if (table || message === "processing BLOBS" || PROGRESS.test(message)) {
      // progress carries no level: one here is another worker's, whose message comes later
      if (leveled) this.#strayLevels++;
      if (table) this.#tables.set(table[1]!, (this.#tables.get(table[1]!) ?? 0) + 1);
      else if (message === "processing BLOBS") this.#blobs++;
      return;
    }
    // a message's level is always on its own line, before it: a prefixed line with no level
    // anywhere is progress this list does not know, unless it says where an error happened, or
    // a level went astray and this is its message, landing after yet another worker's prefix
    if (!leveled && this.#strayLevels > 0) this.#strayLevels--;
    else if (prefix && !leveled && !/^(?:while PROCESSING TOC|from TOC entry)/.test(message)) return;
    if (this.#first.length < FIRST_PROBLEMS) {
      this.#first.push(l);
      return;
    }
    this.#last.push(l);
    if (this.#last.length > LAST_PROBLEMS) {
      this.#last.shift();
      this.#dropped++;
    }
  }

  /** The lines of pg_restore's standard error that were not progress. */
  get problemTail(): string {
    return [...this.#first, ...(this.#dropped ? ["…"] : []), ...this.#last].join("\n");
  }

  /** The data entries of `toc` pg_restore did not report processing. */
  missing(toc: readonly TocEntry[]): TocEntry[] {
    const tables = new Map(this.#tables);
    let blobs = this.#blobs;
    const out: TocEntry[] = [];
    for (const e of dataEntries(toc)) {
      if (e.desc === "BLOBS") {
        if (blobs > 0) blobs--;
        else out.push(e);
        continue;
      }
      const key = asOutput(`${e.namespace ?? ""}.${e.tag}`);
      const n = tables.get(key) ?? 0;
      if (n > 0) tables.set(key, n - 1);
      else out.push(e);
    }
    return out;
  }
}

/**
 * A TOC name (its bytes, read as latin1) as it appears in pg_restore's output lines, which carry
 * the same bytes and are read as UTF-8: decoded the same way, so names in any encoding compare.
 */
function asOutput(tocName: string): string {
  return Buffer.from(tocName, "latin1").toString("utf8");
}
