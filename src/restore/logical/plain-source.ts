/** Byte streams of a plain dump, decompressed when gzip, bounded in size and by the drill's signal. */
import { createReadStream } from "node:fs";
import { addAbortSignal, type Readable, Transform, type TransformCallback } from "node:stream";
import { createGunzip } from "node:zlib";
import { formatBytes } from "../../util/duration.js";
import { BackupDefectError } from "../../util/errors.js";
import { EXTERNAL_COMPRESSIONS, type ExternalCompression, openDecompressed } from "./decompress.js";
import { type ScannerOptions, SqlScanner } from "./sql-scanner.js";

/** How a plain dump is compressed: not, gzip (read in-process), or an external format. */
export type PlainCompression = "none" | "gzip" | ExternalCompression;

/** The compression of a plain dump format (`plain`, `plain-gzip`, `plain-xz`, …); undefined for archives. */
export function plainCompression(format: string): PlainCompression | undefined {
  if (format === "plain") return "none";
  if (format === "plain-gzip") return "gzip";
  const c = format.startsWith("plain-") ? format.slice("plain-".length) : "";
  return (EXTERNAL_COMPRESSIONS as readonly string[]).includes(c) ? (c as ExternalCompression) : undefined;
}

/** The largest decompressed plain dump read unless configured otherwise. */
export const DEFAULT_MAX_PLAIN_BYTES = 1024 ** 4;

/** How a plain dump is read. */
export interface PlainReadOptions extends ScannerOptions {
  signal?: AbortSignal;
  /** Stop (as a defect) once this many decompressed bytes were read. */
  maxBytes?: number;
}

/** Fails the stream once more than `max` bytes went through: a decompression bomb ends here. */
function sizeCap(max: number): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      total += chunk.length;
      if (total > max)
        return cb(
          new BackupDefectError(
            `the dump decompresses to more than ${formatBytes(max)} (the configured cap); refused`,
          ),
        );
      cb(null, chunk);
    },
  });
}

/** Opens the dump's bytes; gzip and read errors surface on the returned stream. */
export function openPlain(
  path: string,
  compression: PlainCompression | boolean,
  opts: PlainReadOptions = {},
): Readable {
  const how = compression === true ? "gzip" : compression === false ? "none" : compression;
  const file: Readable =
    how === "none" || how === "gzip"
      ? createReadStream(path, { highWaterMark: 1 << 20 })
      : openDecompressed(path, how, opts.signal);
  let out: Readable = file;
  if (how === "gzip") {
    const gunzip = createGunzip({ chunkSize: 1 << 20 });
    file.on("error", (err: Error) => gunzip.destroy(err));
    out = file.pipe(gunzip);
  }
  const cap = sizeCap(opts.maxBytes ?? DEFAULT_MAX_PLAIN_BYTES);
  out.on("error", (err) => cap.destroy(err));
  out.pipe(cap);
  cap.on("close", () => {
    file.destroy();
    if (out !== file) out.destroy();
  });
  return opts.signal ? addAbortSignal(opts.signal, cap) : cap;
}

/** A damaged gzip stream: truncated ("unexpected end") or corrupt. */
function gzipDamage(err: unknown): string | undefined {
  const msg = err instanceof Error ? err.message : "";
  return /unexpected end|incorrect|invalid|header check/i.test(msg) ? msg : undefined;
}

/**
 * Scans a whole plain dump before anything of it runs: meta-commands, hazards, referenced
 * roles, its encoding and its completion footer. Stops at the first refusal.
 */
export async function prescanPlain(
  path: string,
  compression: PlainCompression | boolean,
  opts: PlainReadOptions = {},
): Promise<SqlScanner> {
  const scanner = new SqlScanner(opts);
  const gzip = compression === true || compression === "gzip";
  const input = openPlain(path, compression, opts);
  try {
    for await (const chunk of input) {
      scanner.write(chunk as Buffer);
      // one forbidden command or hazard decides
      if (scanner.forbidden || scanner.hazard) return scanner;
    }
    scanner.end();
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const damage = gzip ? gzipDamage(err) : undefined;
    if (damage && /unexpected end/i.test(damage)) {
      scanner.end();
      const cut = scanner.cutOff ?? "dump is cut off";
      throw new BackupDefectError(`${cut}; the gzip stream ends early (${damage})`, { cause: err });
    }
    if (damage) throw new BackupDefectError(`gzip stream is damaged: ${damage}`, { cause: err });
    if (err instanceof BackupDefectError && /cut off/.test(err.message)) {
      // an external decompressor that hit the end early: say what the dump lacks
      scanner.end();
      throw new BackupDefectError(`${scanner.cutOff ?? "dump is cut off"}; ${err.message}`, { cause: err });
    }
    throw err;
  } finally {
    input.destroy();
  }
  return scanner;
}
