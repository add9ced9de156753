/** A stream filter that refuses plain SQL carrying psql meta-commands, before psql sees them. */
import { Transform, type TransformCallback } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { BackupDefectError, VerifierError } from "../../util/errors.js";
import { type MetaCommand, SqlScanner } from "./sql-scanner.js";

/** The error a forbidden meta-command raises. */
export function forbiddenError(m: MetaCommand, file: string): BackupDefectError {
  return new BackupDefectError(
    `plain dump ${file} contains the psql meta-command \\${m.command} at line ${m.line} ("${m.text.trim()}"); refused, nothing of it was executed`,
  );
}

/**
 * What stops a dump from being run: a forbidden meta-command or hazardous SQL (a defect of
 * the dump), or a C library Attest refuses to load (the verifier declines: `error`).
 */
export function scanProblem(scanner: SqlScanner, file: string): Error | undefined {
  if (scanner.forbidden) return forbiddenError(scanner.forbidden, file);
  const h = scanner.hazard;
  if (!h) return undefined;
  const message = `dump ${file} contains ${h.reason} at line ${h.line}; pg_dump never writes this — refused, nothing of it was executed`;
  return h.kind === "refuse" ? new VerifierError(message) : new BackupDefectError(message);
}

/** Options of createGuardStream. */
export interface GuardOptions {
  file: string;
  /**
   * When set, psql is put in restricted mode with this key before the first line (every
   * meta-command refused), and the dump's own \restrict / \unrestrict lines are dropped.
   */
  restrictKey?: string;
  /** Counts bytes that went through. */
  onBytes?: (total: number) => void;
}

/** Passes SQL text through line by line; fails the stream at a forbidden meta-command. */
export function createGuardStream(opts: GuardOptions): Transform {
  const scanner = new SqlScanner();
  const decoder = new StringDecoder("utf8");
  let partial = "";
  let total = 0;
  let started = false;
  const handle = (line: string, out: string[]): Error | undefined => {
    const meta = scanner.line(line);
    const problem = scanProblem(scanner, opts.file);
    if (problem) return problem;
    if (meta) {
      if (opts.restrictKey && (meta.command === "restrict" || meta.command === "unrestrict")) {
        out.push("");
        return undefined;
      }
    }
    out.push(line);
    return undefined;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      total += chunk.length;
      opts.onBytes?.(total);
      const lines = (partial + decoder.write(chunk)).split("\n");
      partial = lines.pop() ?? "";
      const out: string[] = [];
      if (!started) {
        started = true;
        if (opts.restrictKey) out.push(`\\restrict ${opts.restrictKey}`);
      }
      for (const l of lines) {
        const err = handle(l, out);
        if (err) return cb(err);
      }
      cb(null, out.length ? `${out.join("\n")}\n` : undefined);
    },
    flush(cb: TransformCallback) {
      const out: string[] = [];
      partial += decoder.end();
      if (partial) {
        const err = handle(partial, out);
        if (err) return cb(err);
      }
      cb(null, out.length ? `${out.join("\n")}\n` : undefined);
    },
  });
}
