/** Reading gzip / lz4 / zstd files as streams: zlib in-process, the lz4 and zstd tools otherwise. */
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { confinedReaderSpawn } from "../runtimes/local/confine.js";
import { assertRegularFile, openBackupFile } from "../util/backup-file.js";
import type { WalCompression } from "./wal-names.js";

/** A decompressing reader of one file. */
export interface DecompressedFile {
  /** The decompressed bytes. */
  stream: Readable;
  /** Settles when the input was read to its end: rejects with the decompressor's complaint. */
  done: Promise<void>;
  /** Compressed bytes read so far (when measurable), for progress. */
  bytesRead(): number;
  /** Stops reading early. */
  close(): void;
}

const TOOLS: Record<Exclude<WalCompression, "gz">, string> = { lz4: "lz4", zst: "zstd" };

/** Opens `path` (or, read in-process, the descriptor `fd` of it) for reading its decompressed content. */
export function openDecompressed(
  path: string,
  compression: WalCompression | undefined,
  fd?: number,
): DecompressedFile {
  if (compression === undefined || compression === "gz") {
    const file =
      fd === undefined
        ? createReadStream(path, { highWaterMark: 1 << 20 })
        : createReadStream("", { fd, highWaterMark: 1 << 20 });
    let read = 0;
    file.on("data", (b) => {
      read += b.length;
    });
    if (compression === undefined) {
      const done = new Promise<void>((resolve, reject) => {
        file.on("end", resolve);
        file.on("error", reject);
        // closed early on purpose: settled, not failed
        file.on("close", resolve);
      });
      done.catch(() => {});
      return { stream: file, done, bytesRead: () => read, close: () => file.destroy() };
    }
    const gunzip = createGunzip({ chunkSize: 1 << 20 });
    const done = new Promise<void>((resolve, reject) => {
      gunzip.on("end", resolve);
      gunzip.on("error", (err) => reject(new Error(`gzip: ${err.message}`, { cause: err })));
      file.on("error", reject);
      gunzip.on("close", resolve);
    });
    done.catch(() => {});
    file.pipe(gunzip);
    return {
      stream: gunzip,
      done,
      bytesRead: () => read,
      close: () => {
        file.destroy();
        gunzip.destroy();
      },
    };
  }
  const tool = TOOLS[compression];
  // the decompressor parses the backup's bytes: confined, seeing only this file (confine.ts)
  const run = confinedReaderSpawn(tool, ["-dc", "--", path], path);
  const child = spawn(run.cmd, run.args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: run.env,
    ...(run.uid !== undefined ? { uid: run.uid, gid: run.gid } : {}),
  });
  let stderr = "";
  let out = 0;
  let closed = false;
  child.stderr.on("data", (b: Buffer) => {
    stderr = (stderr + b.toString("utf8")).slice(-2000);
  });
  child.stdout.on("data", (b: Buffer) => {
    out += b.length;
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on("error", (err) =>
      reject(new Error(`${tool}: could not start (${err.message}); is it installed?`, { cause: err })),
    );
    child.on("close", (code, sig) => {
      if (code === 0 || closed) return resolve();
      const tail = stderr.trim().split("\n").slice(-2).join(" | ");
      reject(
        new Error(
          `${tool}: ${sig ? `killed by ${sig}` : `exited with code ${code}`}${tail ? `: ${tail}` : ""}`,
        ),
      );
    });
  });
  done.catch(() => {});
  return {
    stream: child.stdout,
    done,
    bytesRead: () => out,
    close: () => {
      closed = true;
      child.kill("SIGTERM");
    },
  };
}

/** The first `bytes` decompressed bytes of a file (fewer when it is shorter or damaged). */
export function readDecompressedHead(
  path: string,
  compression: WalCompression | undefined,
  bytes: number,
): Promise<Buffer> {
  // a backup's writer chose the file's type: a link out of it, a FIFO or a device is not read;
  // what is read in-process is read from the descriptor that was checked, not the path again
  let fd: number | undefined;
  try {
    if (compression === undefined || compression === "gz") fd = openBackupFile(path);
    else assertRegularFile(path);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve) => {
    const f = openDecompressed(path, compression, fd);
    const chunks: Buffer[] = [];
    let total = 0;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      f.close();
      resolve(Buffer.concat(chunks).subarray(0, bytes));
    };
    f.stream.on("data", (b: Buffer) => {
      chunks.push(b);
      total += b.length;
      if (total >= bytes) finish();
    });
    f.stream.on("end", finish);
    f.stream.on("error", finish);
    f.done.then(finish, finish);
  });
}

/** The compression a file name's suffix says. */
export function compressionOfName(name: string): WalCompression | undefined {
  if (/\.(gz|tgz)$/.test(name)) return "gz";
  if (name.endsWith(".lz4")) return "lz4";
  if (name.endsWith(".zst")) return "zst";
  return undefined;
}
