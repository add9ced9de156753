/**
 * Prefetching the WAL a drill needs from a stored archive into the sandbox's own directory, before
 * recovery starts: the restored server keeps no channel to the store, and its restore_command
 * only copies from that directory. The objects travel as one tar stream that Attest writes from
 * the store's bodies and `tar -x` unpacks inside the sandbox (one process, any number of segments).
 */
import { Readable } from "node:stream";
import type { Backup, RecoveryTarget } from "../../model.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import type { Storage, StoredObject } from "../../storage/storage.js";
import { formatBytes } from "../../util/duration.js";
import { coerceError, VerifierError } from "../../util/errors.js";
import type { StoredWalArchive } from "../../wal/stored-wal-archive.js";
import { parseLsn, segmentOfLsn } from "../../wal/wal-names.js";
import type { RestoreContext } from "../restorer.js";
import { extractTarStream } from "./extract.js";
import { sandboxSh } from "./sandbox-shell.js";

/** The archive objects recovery to `target` can ask for, in replay order (history files first). */
export function walToPrefetch(
  archive: StoredWalArchive,
  backup: Backup,
  target: RecoveryTarget | undefined,
): StoredObject[] {
  const idx = archive.index;
  const out: StoredObject[] = [];
  for (const name of idx.histories.values()) out.push(archive.objects.get(name)!);
  const start = backup.walRange;
  if (!start) return out;
  const startSeg = segmentOfLsn(parseLsn(start.startLsn), idx.segSize);
  // an LSN target needs nothing past its own segment (and the next, where the record may end)
  const lastSeg =
    target?.kind === "lsn" ? segmentOfLsn(parseLsn(target.lsn), idx.segSize) + 1 : Number.POSITIVE_INFINITY;
  for (const [tli, files] of [...idx.files.entries()].sort((a, b) => a[0] - b[0])) {
    if (tli < start.timeline) continue;
    for (const seg of idx.segments.get(tli) ?? []) {
      if (seg < startSeg || seg > lastSeg) continue;
      out.push(archive.objects.get(files.get(seg)!)!);
    }
  }
  return out;
}

/** One ustar header block for a regular file. */
function tarHeader(name: string, size: number, mtime: Date): Buffer {
  const h = Buffer.alloc(512);
  const put = (text: string, at: number, len: number) => h.write(text, at, len, "latin1");
  const oct = (n: number, len: number) => `${n.toString(8).padStart(len - 1, "0")}\0`;
  put(name, 0, 100);
  put(oct(0o600, 8), 100, 8);
  put(oct(0, 8), 108, 8);
  put(oct(0, 8), 116, 8);
  put(oct(size, 12), 124, 12);
  put(oct(Math.floor(mtime.getTime() / 1000), 12), 136, 12);
  put("        ", 148, 8);
  put("0", 156, 1);
  put("ustar\x0000", 257, 8);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8);
  return h;
}

/** A tar stream of the objects' bodies, each checked to have exactly its listed size. */
function tarOfObjects(storage: Storage, objects: readonly StoredObject[], signal?: AbortSignal): Readable {
  async function* generate() {
    for (const o of objects) {
      const name = o.key.slice(o.key.lastIndexOf("/") + 1);
      yield tarHeader(name, o.sizeBytes, o.lastModified);
      const body = await storage.openRead(o.key, signal ? { signal } : {});
      let n = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        n += chunk.length;
        if (n > o.sizeBytes) throw new Error(`${storage.describe(o.key)} is longer than listed`);
        yield chunk;
      }
      if (n !== o.sizeBytes)
        throw new Error(`${storage.describe(o.key)}: ${n} bytes read of the ${o.sizeBytes} listed`);
      if (n % 512) yield Buffer.alloc(512 - (n % 512));
    }
    yield Buffer.alloc(1024);
  }
  return Readable.from(generate(), { objectMode: false });
}

/**
 * Fetches `objects` into `$HOME/attest-wal/` inside the sandbox; returns that directory. A store
 * that fails mid-way is `error` (Attest could not verify), never the backup's fault.
 */
export async function prefetchWal(
  sandbox: Sandbox,
  storage: Storage,
  objects: readonly StoredObject[],
  ctx: RestoreContext,
): Promise<string> {
  const dir = (
    await sandboxSh(
      sandbox,
      'umask 077 && mkdir -p "$HOME/attest-wal" && cd "$HOME/attest-wal" && pwd -P',
      [],
    )
  ).stdout.trim();
  const total = objects.reduce((n, o) => n + o.sizeBytes, 0);
  ctx.progress(`prefetching ${objects.length} WAL objects (${formatBytes(total)})`);
  const stream = tarOfObjects(storage, objects, ctx.signal);
  let broken: Error | undefined;
  stream.on("error", (err) => {
    broken = coerceError(err);
  });
  try {
    await extractTarStream(sandbox, "attest-wal.tar", stream, dir, ctx);
  } catch (err) {
    if (!broken) throw err;
  }
  if (broken)
    throw new VerifierError(`prefetching WAL from ${storage.describe("")} broke off: ${broken.message}`, {
      cause: broken,
    });
  return dir;
}
