/**
 * The roles section of a full pg_dumpall file: everything before its first `\connect`. It
 * runs in a psql of its own that goes on after an error, because pg_dumpall writes
 * `CREATE ROLE` for every role, the sandbox's bootstrap superuser included, and that one
 * statement cannot succeed in any fresh cluster. Only errors named here are forgiven; any
 * other fails the drill. The section is read into memory and scanned there, so what psql
 * receives is exactly what was judged, and it may hold no COPY (psql would read the rows of
 * a failed COPY as SQL once it no longer stops at errors).
 */
import { Transform, type TransformCallback } from "node:stream";
import { BackupDefectError } from "../../util/errors.js";
import { ProcessError } from "../../util/process.js";
import { scanProblem } from "./guard-stream.js";
import { openPlain, type PlainCompression, type PlainReadOptions } from "./plain-source.js";
import { SqlScanner } from "./sql-scanner.js";

/** The most a roles section may hold (pg_dumpall writes a few lines per role). */
const MAX_SECTION_BYTES = 64 * 1024 * 1024;

/** Reads the first `length` bytes of the (decompressed) dump. */
export async function readSection(
  path: string,
  compression: PlainCompression,
  length: number,
  opts: PlainReadOptions,
): Promise<Buffer> {
  if (length > MAX_SECTION_BYTES)
    throw new BackupDefectError(`the roles section of the pg_dumpall file is larger than 64 MiB`);
  const chunks: Buffer[] = [];
  let total = 0;
  const input = openPlain(path, compression, opts);
  try {
    for await (const chunk of input) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total >= length) break;
    }
  } finally {
    input.destroy();
  }
  if (total < length) throw new BackupDefectError("the pg_dumpall file became shorter while it was read");
  return Buffer.concat(chunks).subarray(0, length);
}

/**
 * The roles section as psql gets it: judged whole by a fresh scanner; pg_dumpall's own
 * \restrict and \unrestrict lines dropped and, with `key`, psql put in restricted mode first.
 * A `DROP TABLESPACE` line (pg_dumpall --clean) of a tablespace in `keep` is dropped too: made
 * inside the sandbox for this restore, it must outlive the CREATE TABLESPACE of a host path.
 * Dropped lines leave an empty line, so psql's line numbers still point into the section.
 */
export function sectionForPsql(
  section: Buffer,
  file: string,
  key: string | undefined,
  keep: ReadonlySet<string> = new Set(),
): { input: Buffer; kept: string[] } {
  const scanner = new SqlScanner();
  scanner.write(section);
  scanner.end();
  const problem = scanProblem(scanner, file);
  if (problem) throw problem;
  // the \connect postgres (or template1) old pg_dumpall writes before anything: psql is there already
  const leading = scanner.metaCommands.find(
    (m) =>
      (m.command === "connect" || m.command === "c") &&
      /^\\c(?:onnect)? (?:postgres|template1)\s*$/.test(m.text) &&
      isPreamble(section.subarray(0, m.start)),
  );
  const other = scanner.metaCommands.find(
    (m) => m !== leading && m.command !== "restrict" && m.command !== "unrestrict",
  );
  if (other)
    throw new BackupDefectError(
      `${file}: the roles section of the pg_dumpall file holds the meta-command \\${other.command} at line ${other.line}; pg_dumpall writes none there`,
    );
  // a statement that is a COPY, not the word in a comment or a role's COMMENT text
  if (scanner.firstCopyLine !== undefined)
    throw new BackupDefectError(
      `${file}: the roles section of the pg_dumpall file holds a COPY at line ${scanner.firstCopyLine}; pg_dumpall writes none there`,
    );
  const raw = section.toString("latin1");
  const cuts = scanner.metaCommands.map((m) => ({ start: m.start, end: m.end }));
  const kept: string[] = [];
  // latin1 keeps one character per byte: match offsets are byte offsets
  for (const m of raw.matchAll(/^DROP TABLESPACE ("(?:[^"]|"")+"|[^\s";]+);\n/gm)) {
    const name = Buffer.from(identifier(m[1]!), "latin1").toString("utf8");
    if (!keep.has(name)) continue;
    cuts.push({ start: m.index, end: m.index + m[0].length });
    kept.push(name);
  }
  cuts.sort((a, b) => a.start - b.start);
  const parts: Buffer[] = key ? [Buffer.from(`\\restrict ${key}\n`)] : [];
  let cursor = 0;
  for (const c of cuts) {
    parts.push(section.subarray(cursor, c.start), Buffer.from("\n"));
    cursor = c.end;
  }
  parts.push(section.subarray(cursor));
  return { input: Buffer.concat(parts), kept };
}

/** The roles section of a pg_dumpall file, read and not yet run. */
export interface ClusterSection {
  bytes: Buffer;
  /** Tablespaces it creates (at host paths the sandbox must never use). */
  tablespaces: Set<string>;
}

/** Only comments, blank lines and \restrict lines: nothing psql would run against a database. */
function isPreamble(bytes: Buffer): boolean {
  return bytes
    .toString("latin1")
    .split("\n")
    .every((l) => /^\s*(?:--.*)?$/.test(l) || /^\\(?:un)?restrict \S+\s*$/.test(l));
}

/**
 * Reads the roles section of a pg_dumpall file: all before its first `\connect`, or before
 * its second when the first comes before any statement (pg_dumpall up to 9.x starts with
 * `\connect postgres`). `connects` are the byte offsets of its \connect lines, in order.
 */
export async function readClusterSection(
  path: string,
  compression: PlainCompression,
  connects: readonly number[],
  opts: PlainReadOptions,
): Promise<ClusterSection> {
  let bytes = await readSection(path, compression, connects[0]!, opts);
  if (isPreamble(bytes) && connects.length > 1)
    bytes = await readSection(path, compression, connects[1]!, opts);
  const tablespaces = new Set<string>();
  for (const m of bytes.toString("utf8").matchAll(/^CREATE TABLESPACE ("(?:[^"]|"")+"|[^\s"]+) /gm)) {
    const raw = m[1]!;
    tablespaces.add(raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw);
  }
  return { bytes, tablespaces };
}

/** Drops the first `count` bytes of a stream (the part already run). */
export function skipBytes(count: number): Transform {
  let left = count;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (left >= chunk.length) {
        left -= chunk.length;
        return cb();
      }
      const rest = left ? chunk.subarray(left) : chunk;
      left = 0;
      cb(null, rest);
    },
  });
}

/** An error psql may print for the roles section, and why it is harmless. */
export interface ForgivenError {
  /** The message after `ERROR:  `, exactly. */
  message: string;
  why: string;
  /** The line psql must have been reading, exactly, when the error is only forgiven there. */
  statement?: string;
}

/** What the sandbox has before the roles section runs. */
export interface SandboxGlobals {
  roles: readonly string[];
  tablespaces: readonly string[];
  databases: readonly string[];
  currentUser: string;
}

/** An identifier as pg_dumpall writes it: bare, or double-quoted with "" for a quote. */
function identifier(raw: string): string {
  return raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw;
}

/**
 * The errors forgiven: CREATE ROLE of roles and CREATE TABLESPACE of tablespaces the sandbox
 * has; and what `pg_dumpall --clean` drops before creating, each at its own DROP line: a
 * database or role a fresh sandbox does not have, and the sandbox's own superuser.
 */
export function forgivenErrors(have: SandboxGlobals, section: string): ForgivenError[] {
  const out: ForgivenError[] = [
    ...have.roles.map((r) => ({
      message: `role "${r}" already exists`,
      why: "the sandbox has it from the start: its bootstrap superuser or a built-in role",
    })),
    ...have.tablespaces.map((t) => ({
      message: `tablespace "${t}" already exists`,
      why: "made inside the sandbox before the restore",
    })),
  ];
  const clean = "pg_dumpall --clean drops it before creating it";
  for (const m of section.matchAll(/^DROP (DATABASE|ROLE) ("(?:[^"]|"")+"|[^\s";]+);$/gm)) {
    const [statement, kind, raw] = [m[0], m[1]!, m[2]!];
    const name = identifier(raw);
    if (kind === "DATABASE" && !have.databases.includes(name))
      out.push({
        message: `database "${name}" does not exist`,
        statement,
        why: `${clean}; a fresh sandbox has none`,
      });
    else if (kind === "ROLE" && name === have.currentUser)
      out.push({
        message: "current user cannot be dropped",
        statement,
        why: `${clean}; it is the sandbox's own superuser`,
      });
    else if (kind === "ROLE" && !have.roles.includes(name))
      out.push({
        message: `role "${name}" does not exist`,
        statement,
        why: `${clean}; a fresh sandbox has none`,
      });
  }
  return out;
}

/** Reads psql's standard error: forgiven errors are counted, the first other error is kept. */
export class PsqlErrorJudge {
  readonly #forgiven: ForgivenError[];
  readonly #lines: string[];
  readonly #seen = new Map<string, number>();
  #unexpected: string[] | undefined;

  /** `input` is all psql reads (its error lines number the lines of it). */
  constructor(forgiven: ForgivenError[], input: string) {
    this.#forgiven = forgiven;
    this.#lines = input.split("\n");
  }

  /** One line of psql's standard error. */
  line(text: string): void {
    if (this.#unexpected && this.#unexpected.length < 4) {
      this.#unexpected.push(text);
      return;
    }
    const m = /^psql:[^\n]*?:(\d+): ERROR: {2}(.*)$/.exec(text);
    if (!m) return;
    const at = this.#lines[Number(m[1]) - 1];
    const hit = this.#forgiven.find(
      (f) => f.message === m[2] && (f.statement === undefined || f.statement === at),
    );
    const key = hit && `${hit.message} (${hit.why})`;
    if (key && !this.#unexpected) this.#seen.set(key, (this.#seen.get(key) ?? 0) + 1);
    else this.#unexpected ??= [text];
  }

  /** What was forgiven, for the drill record (one line). */
  notes(): string[] {
    if (!this.#seen.size) return [];
    const items = [...this.#seen].map(([key, n]) => `${key}${n > 1 ? ` (${n} times)` : ""}`);
    return [`errors psql printed loading the roles section, forgiven by name: ${items.join("; ")}`];
  }

  /** Throws as psql with ON_ERROR_STOP would have failed, when an error was not forgiven. */
  check(): void {
    if (!this.#unexpected) return;
    const tail = this.#unexpected.join("\n");
    throw new ProcessError(`psql: ${this.#unexpected[0]}`, {
      code: 3,
      signal: null,
      stdout: "",
      stderrTail: tail,
      timedOut: false,
    });
  }
}
