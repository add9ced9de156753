/** Tells what a file or directory in a dump directory is, from its content. */
import { closeSync, createReadStream, existsSync, readdirSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { createGunzip } from "node:zlib";
import { compressionOf, openDecompressed } from "../../restore/logical/decompress.js";
import { openBackupFile } from "../../util/backup-file.js";
import { type ArchiveHeader, NotAnArchiveError, parseArchiveHeader } from "./archive-header.js";
import { type PlainHeader, parsePlainHeader } from "./plain-header.js";

/** The dump formats this source knows. */
export const DUMP_FORMATS = [
  "custom",
  "custom-gzip",
  "directory",
  "tar",
  "plain",
  "plain-gzip",
  "plain-bzip2",
  "plain-xz",
  "plain-zstd",
  "plain-lz4",
  "unknown",
] as const;
/** A dump format. */
export type DumpFormat = (typeof DUMP_FORMATS)[number];

/** What detection found. */
export interface Detected {
  format: DumpFormat;
  archive?: ArchiveHeader;
  plain?: PlainHeader;
  /** Why the content is not a dump (format `unknown`). */
  problem?: string;
  sizeBytes: number;
}

function readHead(path: string, bytes: number): Buffer {
  // a FIFO or device (toc.dat of a directory dump included) would block Attest for good
  const fd = openBackupFile(path, { follow: true });
  try {
    const buf = Buffer.alloc(bytes);
    const n = readSync(fd, buf, 0, bytes, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** The first `bytes` of a gzip file's decompressed content (a truncated stream is fine). */
export function readGzipHead(path: string, bytes: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const input = createReadStream(path);
    const gunzip = createGunzip();
    const finish = () => {
      input.destroy();
      gunzip.destroy();
      resolve(Buffer.concat(chunks).subarray(0, bytes));
    };
    gunzip.on("data", (b: Buffer) => {
      chunks.push(b);
      total += b.length;
      if (total >= bytes) finish();
    });
    gunzip.on("end", finish);
    gunzip.on("error", finish);
    input.on("error", finish);
    input.pipe(gunzip);
  });
}

/** The first `bytes` decompressed bytes, from the confined decompressor (a cut stream is fine). */
async function readDecompressedHead(
  path: string,
  compression: Parameters<typeof openDecompressed>[1],
  bytes: number,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  const input = openDecompressed(path, compression);
  try {
    for await (const chunk of input) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total >= bytes) break;
    }
  } catch (err) {
    // a damaged or cut stream still has a readable head: drilling it will say what is wrong
    if (total === 0) throw err;
  } finally {
    input.destroy();
  }
  return Buffer.concat(chunks).subarray(0, bytes);
}

function dirSize(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? dirSize(p) : statSync(p).size;
  }
  return n;
}

/** An archive's header parsed from its first bytes, or why it is not one. */
export function archive(buf: Buffer, format: DumpFormat, sizeBytes: number): Detected {
  try {
    return { format, archive: parseArchiveHeader(buf), sizeBytes };
  } catch (err) {
    const why = err instanceof NotAnArchiveError ? err.message : String(err);
    return { format: "unknown", problem: `not a readable pg_dump ${format} archive (${why})`, sizeBytes };
  }
}

/** Whether a head is a tar file's (pg_dump -Ft). */
export function isTar(head: Buffer): boolean {
  return head.length > 512 && head.toString("latin1", 257, 262) === "ustar";
}

/** A tar archive from its head: pg_dump writes toc.dat as its first member. */
export function fromTarHead(head: Buffer, sizeBytes: number): Detected {
  const first = head.toString("latin1", 0, 100).replace(/\0.*$/s, "");
  if (first !== "toc.dat")
    return {
      format: "unknown",
      problem: `a tar file whose first member is ${first}, not toc.dat`,
      sizeBytes,
    };
  return archive(head.subarray(512), "tar", sizeBytes);
}

/** Whether a head is a gzip stream's. */
export function isGzip(head: Buffer): boolean {
  return head[0] === 0x1f && head[1] === 0x8b;
}

/** What a gzip stream holds, from the first bytes of its content. */
export function fromGzipContent(inner: Buffer, sizeBytes: number): Detected {
  // what `pg_dump -Fc | gzip` leaves: decompressed inside the sandbox before pg_restore reads it
  if (inner.toString("latin1", 0, 5) === "PGDMP") return archive(inner, "custom-gzip", sizeBytes);
  const plain = parsePlainHeader(inner);
  if (plain) return { format: "plain-gzip", plain, sizeBytes };
  return {
    format: "unknown",
    problem: "a gzip stream that does not hold a pg_dump plain SQL dump",
    sizeBytes,
  };
}

/** Detects a directory-format dump (a directory holding toc.dat). */
export function isDirectoryDump(dir: string): boolean {
  return existsSync(join(dir, "toc.dat"));
}

/** Detects the format of `path` by its content. */
export async function detectFormat(path: string): Promise<Detected> {
  const st = statSync(path);
  if (st.isDirectory()) {
    const size = dirSize(path);
    return archive(readHead(join(path, "toc.dat"), 8192), "directory", size);
  }
  const size = st.size;
  if (size === 0) return { format: "unknown", problem: "the file is empty", sizeBytes: 0 };
  const head = readHead(path, 16384);
  if (head.toString("latin1", 0, 5) === "PGDMP") return archive(head, "custom", size);
  if (isTar(head)) return fromTarHead(head, size);
  if (isGzip(head)) return fromGzipContent(await readGzipHead(path, 16384), size);
  const compression = compressionOf(head);
  if (compression) {
    let inner: Buffer;
    try {
      inner = await readDecompressedHead(path, compression, 16384);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      return {
        format: "unknown",
        problem: `a ${compression} file that cannot be read: ${why}`,
        sizeBytes: size,
      };
    }
    const header = parsePlainHeader(inner);
    if (header) return { format: `plain-${compression}`, plain: header, sizeBytes: size };
    return {
      format: "unknown",
      problem: `a ${compression} file that does not hold a pg_dump plain SQL dump`,
      sizeBytes: size,
    };
  }
  const plain = parsePlainHeader(head);
  if (plain) return { format: "plain", plain, sizeBytes: size };
  return {
    format: "unknown",
    problem: "not a pg_dump archive (no PGDMP signature) nor a plain SQL dump header",
    sizeBytes: size,
  };
}
