/** Streams of a plain dump's SQL text, decompressed when gzip. */
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { BackupDefectError } from "../../util/errors.js";
import { SqlScanner } from "./sql-scanner.js";

/** Opens the dump's SQL text; gzip errors surface as BackupDefectError. */
export function openPlain(path: string, gzip: boolean): Readable {
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  if (!gzip) return file;
  const gunzip = createGunzip();
  file.on("error", (err) => gunzip.destroy(err));
  file.pipe(gunzip);
  return gunzip.on("error", () => {}) as Readable;
}

/** Scans a whole plain dump before anything of it runs: meta-commands and referenced roles. */
export async function prescanPlain(path: string, gzip: boolean, signal?: AbortSignal): Promise<SqlScanner> {
  const scanner = new SqlScanner();
  const input = openPlain(path, gzip);
  let partial = "";
  const { StringDecoder } = await import("node:string_decoder");
  const decoder = new StringDecoder("utf8");
  try {
    for await (const chunk of input) {
      if (signal?.aborted) throw signal.reason;
      const lines = (partial + decoder.write(chunk as Buffer)).split("\n");
      partial = lines.pop() ?? "";
      for (const l of lines) scanner.line(l);
      // stop early: one forbidden command or hazard decides
      if (scanner.forbidden || scanner.hazard) break;
    }
    partial += decoder.end();
    if (partial) scanner.line(partial);
  } catch (err) {
    if (gzip && err instanceof Error && /unexpected end|incorrect|invalid|header check/i.test(err.message)) {
      throw new BackupDefectError(`gzip stream is damaged: ${err.message}`);
    }
    throw err;
  } finally {
    input.destroy();
  }
  return scanner;
}
