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
 */
export function sectionForPsql(section: Buffer, file: string, key: string | undefined): Buffer {
  const scanner = new SqlScanner();
  scanner.write(section);
  scanner.end();
  const problem = scanProblem(scanner, file);
  if (problem) throw problem;
  const other = scanner.metaCommands.find((m) => m.command !== "restrict" && m.command !== "unrestrict");
  if (other)
    throw new BackupDefectError(
      `${file}: the roles section of the pg_dumpall file holds the meta-command \\${other.command} at line ${other.line}; pg_dumpall writes none there`,
    );
  if (/\bCOPY\b/i.test(section.toString("latin1")))
    throw new BackupDefectError(
      `${file}: the roles section of the pg_dumpall file holds a COPY; pg_dumpall writes none there`,
    );
  const parts: Buffer[] = key ? [Buffer.from(`\\restrict ${key}\n`)] : [];
  let cursor = 0;
  for (const m of scanner.metaCommands) {
    parts.push(section.subarray(cursor, m.start), Buffer.from("\n"));
    cursor = m.end;
  }
  parts.push(section.subarray(cursor));
  return Buffer.concat(parts);
}

/** The roles section of a pg_dumpall file, read and not yet run. */
export interface ClusterSection {
  bytes: Buffer;
  /** Tablespaces it creates (at host paths the sandbox must never use). */
  tablespaces: Set<string>;
}

/** Reads the first `length` bytes of a pg_dumpall file as its roles section. */
export async function readClusterSection(
  path: string,
  compression: PlainCompression,
  length: number,
  opts: PlainReadOptions,
): Promise<ClusterSection> {
  const bytes = await readSection(path, compression, length, opts);
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
}

/** The errors forgiven: CREATE ROLE of roles and CREATE TABLESPACE of tablespaces the sandbox has. */
export function forgivenErrors(roles: readonly string[], tablespaces: readonly string[]): ForgivenError[] {
  return [
    ...roles.map((r) => ({
      message: `role "${r}" already exists`,
      why: "the sandbox has it from the start: its bootstrap superuser or a built-in role",
    })),
    ...tablespaces.map((t) => ({
      message: `tablespace "${t}" already exists`,
      why: "made inside the sandbox before the restore",
    })),
  ];
}

/** Reads psql's standard error: forgiven errors are counted, the first other error is kept. */
export class PsqlErrorJudge {
  readonly #forgiven: ForgivenError[];
  readonly #seen = new Map<string, number>();
  #unexpected: string[] | undefined;

  constructor(forgiven: ForgivenError[]) {
    this.#forgiven = forgiven;
  }

  /** One line of psql's standard error. */
  line(text: string): void {
    if (this.#unexpected && this.#unexpected.length < 4) {
      this.#unexpected.push(text);
      return;
    }
    const m = /^psql:[^\n]*?:\d+: ERROR: {2}(.*)$/.exec(text);
    if (!m) return;
    const hit = this.#forgiven.find((f) => f.message === m[1]);
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
