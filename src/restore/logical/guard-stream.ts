/**
 * A stream filter between a plain dump and psql: the dump's bytes pass through unchanged
 * (whatever their encoding), except that a meta-command line is held until it is complete
 * and judged, so psql never receives a line Attest refuses.
 */
import { Transform, type TransformCallback } from "node:stream";
import { BackupDefectError, VerifierError } from "../../util/errors.js";
import { type MetaCommand, type ScannerOptions, SqlScanner } from "./sql-scanner.js";

/** The error a forbidden meta-command raises. */
export function forbiddenError(m: MetaCommand, file: string): BackupDefectError {
  const why = m.problem && m.problem !== "pg_dump never writes it" ? ` (${m.problem})` : "";
  return new BackupDefectError(
    `plain dump ${file} contains the psql meta-command \\${m.command} at line ${m.line} ("${m.text.trim()}")${why}; refused, nothing of it was executed`,
  );
}

/**
 * What stops a dump from being run: a forbidden meta-command or hazardous SQL (a defect of
 * the dump), a C library Attest declines (`error`), or — once the whole dump
 * was scanned (`ended`) — a missing completion footer.
 */
export function scanProblem(scanner: SqlScanner, file: string, ended = false): Error | undefined {
  if (scanner.forbidden) return forbiddenError(scanner.forbidden, file);
  const h = scanner.hazard;
  if (h) {
    const message = h.message
      ? `dump ${file} ${h.message}`
      : `dump ${file} contains ${h.reason} at line ${h.line}; pg_dump never writes this — refused, nothing of it was executed`;
    return h.kind === "refuse" ? new VerifierError(message) : new BackupDefectError(message);
  }
  const cut = ended ? scanner.cutOff : undefined;
  return cut ? new BackupDefectError(cut) : undefined;
}

/** Options of createGuardStream. */
export interface GuardOptions extends ScannerOptions {
  file: string;
  /**
   * When set, psql is put in restricted mode with this key before the first byte (every
   * meta-command refused); the dump's own \restrict / \unrestrict lines are dropped, and each
   * \connect or \encoding line pg_dump writes is let through by lifting restricted mode for
   * that one line only.
   */
  restrictKey?: string;
  /** Counts bytes that went through. */
  onBytes?: (total: number) => void;
}

/** Passes a plain dump through; fails the stream before a refused line reaches psql. */
export function createGuardStream(opts: GuardOptions): Transform {
  const scanner = new SqlScanner(opts);
  const key = opts.restrictKey;
  /** Bytes received but not yet passed on, starting at offset `heldAt` of the dump. */
  let held: Buffer = Buffer.alloc(0);
  let heldAt = 0;
  let judged = 0;
  let total = 0;
  let started = false;

  const rewrite = (m: MetaCommand, line: Buffer): Buffer | undefined => {
    if (!key) return undefined;
    if (m.command === "restrict" || m.command === "unrestrict") return Buffer.from("\n");
    const nl = line[line.length - 1] === 0x0a ? "" : "\n";
    return Buffer.concat([
      Buffer.from(`\\unrestrict ${key}\n`),
      line,
      Buffer.from(`${nl}\\restrict ${key}\n`),
    ]);
  };

  /** What can be passed on now: everything scanned, up to an incomplete meta-command line. */
  const release = (ended: boolean): Buffer[] | Error => {
    const problem = scanProblem(scanner, opts.file, ended);
    if (problem) return problem;
    const safeEnd = ended ? heldAt + held.length : (scanner.metaStart ?? scanner.pos);
    const out: Buffer[] = [];
    if (!started) {
      started = true;
      if (key) out.push(Buffer.from(`\\restrict ${key}\n`));
    }
    let cursor = heldAt;
    for (; judged < scanner.metaCommands.length; judged++) {
      const m = scanner.metaCommands[judged]!;
      const line = held.subarray(m.start - heldAt, m.end - heldAt);
      const replacement = rewrite(m, line);
      if (!replacement) continue;
      out.push(held.subarray(cursor - heldAt, m.start - heldAt), replacement);
      cursor = m.end;
    }
    out.push(held.subarray(cursor - heldAt, safeEnd - heldAt));
    held = held.subarray(safeEnd - heldAt);
    heldAt = safeEnd;
    return out;
  };

  const push = (stream: Transform, parts: Buffer[]) => {
    for (const p of parts) if (p.length) stream.push(p);
  };

  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      total += chunk.length;
      opts.onBytes?.(total);
      held = held.length ? Buffer.concat([held, chunk]) : chunk;
      scanner.write(chunk);
      const out = release(false);
      if (out instanceof Error) return cb(out);
      push(this, out);
      cb();
    },
    flush(cb: TransformCallback) {
      scanner.end();
      const out = release(true);
      if (out instanceof Error) return cb(out);
      push(this, out);
      cb();
    },
  });
}
