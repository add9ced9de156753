/**
 * A small ustar writer and reader for evidence bundles: regular files only, held in memory.
 * Bundles are a few megabytes of JSON, CSV and PDF; a streaming library would buy nothing,
 * and the verifier must not depend on more code than it needs to read them.
 */
import { gunzipSync, gzipSync } from "node:zlib";

/** One file of an archive. */
export interface ArchiveEntry {
  path: string;
  data: Buffer;
}

const BLOCK = 512;
/** Most bytes an archive may unpack to (verification holds it in memory). */
export const MAX_TAR_BYTES = 1024 ** 3;

function octal(value: number, width: number): string {
  // width includes the terminating NUL
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: "" };
  // ustar keeps up to 155 bytes of folders apart from the 100-byte name
  for (let i = path.indexOf("/"); i !== -1; i = path.indexOf("/", i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  throw new Error(`path too long for a tar archive: ${path}`);
}

function header(entry: ArchiveEntry, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const { name, prefix } = splitName(entry.path);
  h.write(name, 0, 100, "utf8");
  h.write(octal(0o644, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii");
  h.write(octal(0, 8), 116, "ascii");
  h.write(octal(entry.data.length, 12), 124, "ascii");
  h.write(octal(mtime, 12), 136, "ascii");
  h.write("        ", 148, "ascii"); // checksum field counts as spaces while summing
  h.write("0", 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  h.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return h;
}

/** A gzip-compressed ustar archive of `entries`, every file stamped with `mtime` (seconds). */
export function writeTarGz(entries: readonly ArchiveEntry[], mtime: number): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(header(e, mtime), e.data);
    const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(2 * BLOCK, 0));
  return gzipSync(Buffer.concat(parts));
}

function text(block: Buffer, start: number, len: number): string {
  const raw = block.subarray(start, start + len);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? raw.length : end).toString("utf8");
}

/** Reads a gzip-compressed ustar archive; throws on anything but regular files. */
export function readTarGz(archive: Buffer): ArchiveEntry[] {
  let tar: Buffer;
  try {
    // a bundle from elsewhere may be hostile: a gzip bomb stops at the limit instead of filling memory
    tar = gunzipSync(archive, { maxOutputLength: MAX_TAR_BYTES });
  } catch (err) {
    throw new Error("not a gzip-compressed archive", { cause: err });
  }
  const out: ArchiveEntry[] = [];
  let at = 0;
  while (at + BLOCK <= tar.length) {
    const h = tar.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) return out;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (Number.parseInt(text(h, 148, 8).trim(), 8) !== sum)
      throw new Error(`tar header at byte ${at}: checksum does not match`);
    const type = text(h, 156, 1);
    const prefix = text(h, 345, 155);
    const name = text(h, 0, 100);
    const path = prefix ? `${prefix}/${name}` : name;
    const size = Number.parseInt(text(h, 124, 12).trim() || "0", 8);
    if (type !== "0" && type !== "") throw new Error(`tar entry ${path}: not a regular file (type ${type})`);
    if (!Number.isFinite(size) || at + BLOCK + size > tar.length)
      throw new Error(`tar entry ${path}: truncated`);
    out.push({ path, data: Buffer.from(tar.subarray(at + BLOCK, at + BLOCK + size)) });
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  throw new Error("tar archive ends without its end-of-archive blocks");
}
