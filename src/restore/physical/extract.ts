/**
 * Puts a base backup into the sandbox's empty data directory, as the sandbox user: a plain
 * backup is copied, tar members are streamed (decompressed on the way) into `tar -x`
 * running inside the sandbox. No intermediate copy of the backup is made.
 */
import { join, posix } from "node:path";
import type { Backup } from "../../model.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { formatBytes } from "../../util/duration.js";
import { BackupDefectError, describeError, VerifierError } from "../../util/errors.js";
import { compressionOfName, openDecompressed } from "../../wal/compression.js";
import type { RestoreContext } from "../restorer.js";
import { sandboxSh } from "./sandbox-shell.js";

/** Where tablespaces of a tar backup are placed inside the data directory. */
export const TABLESPACE_DIR = "attest_tablespaces";

// tar complaints that mean the archive itself is bad, not the machine
const TAR_DEFECT =
  /Unexpected EOF|does not look like a tar archive|Skipping to next header|checksum error|Damaged tar archive|invalid tar magic|A lone zero block/i;
const TAR_MACHINE = /No space left on device|Disk quota exceeded|Permission denied|Read-only file system/i;

/** Streams one (possibly compressed) tar file into `destDir` inside the sandbox. */
export async function extractTar(
  sandbox: Sandbox,
  hostFile: string,
  destDir: string,
  ctx: RestoreContext,
): Promise<number> {
  const name = hostFile.split("/").pop()!;
  const file = openDecompressed(hostFile, compressionOfName(name));
  const decompression = file.done.then(
    () => undefined,
    (err: unknown) => err as Error,
  );
  const timer = setInterval(
    () => ctx.progress(`extracting ${name}: ${formatBytes(file.bytesRead())} read`),
    2000,
  );
  timer.unref();
  let tarError: unknown;
  try {
    await sandbox.exec("tar", ["-x", "-f", "-", "-C", destDir, "--no-same-owner", "--warning=no-timestamp"], {
      stdin: file.stream,
      timeoutMs: Math.max(60_000, ctx.timeoutMs),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
  } catch (err) {
    tarError = err;
    file.close();
  } finally {
    clearInterval(timer);
  }
  const decompressError = await decompression;
  if (decompressError) {
    throw new BackupDefectError(`${name} is truncated or corrupt: ${decompressError.message}`, {
      cause: decompressError,
    });
  }
  if (tarError) {
    const msg = describeError(tarError);
    if (ctx.signal?.aborted) throw tarError;
    if (TAR_DEFECT.test(msg) && !TAR_MACHINE.test(msg))
      throw new BackupDefectError(`${name} is not a complete tar archive: ${msg}`, { cause: tarError });
    throw new VerifierError(`could not extract ${name} into the sandbox: ${msg}`, { cause: tarError });
  }
  return file.bytesRead();
}

/** Fills the sandbox's data directory from the backup; returns notes for the record. */
export async function extractBackup(
  sandbox: Sandbox,
  backup: Backup,
  ctx: RestoreContext,
): Promise<string[]> {
  const notes: string[] = [];
  const data = sandbox.dataDir;
  const layout = backup.labels.layout;
  if (layout === "plain") {
    ctx.progress(`copying ${backup.id}`);
    const src = sandbox.inputPath(backup.location);
    const r = await sandboxSh(sandbox, 'cp -R --preserve=mode,timestamps -- "$1/." "$2/"', [src, data], {
      timeoutMs: Math.max(60_000, ctx.timeoutMs),
      allowFailure: true,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    if (r.code !== 0) {
      const msg = r.stderrTail || `cp exited with code ${r.code}`;
      if (/No such file|Input\/output error/.test(msg) && !TAR_MACHINE.test(msg))
        throw new BackupDefectError(`copying ${backup.id} failed: ${msg}`);
      throw new VerifierError(`could not copy ${backup.id} into the sandbox: ${msg}`);
    }
    notes.push(`copied plain backup ${backup.id}`);
    return notes;
  }
  if (layout !== "tar" || !backup.labels.baseTar)
    throw new VerifierError(`${backup.id}: not a base backup layout this restorer knows (${layout})`);
  const bytes = await extractTar(sandbox, join(backup.location, backup.labels.baseTar), data, ctx);
  notes.push(`extracted ${backup.labels.baseTar} (${formatBytes(bytes)} read)`);
  if (backup.labels.walTar) {
    const walBytes = await extractTar(
      sandbox,
      join(backup.location, backup.labels.walTar),
      posix.join(data, "pg_wal"),
      ctx,
    );
    notes.push(`extracted ${backup.labels.walTar} into pg_wal (${formatBytes(walBytes)})`);
  }
  for (const ts of (backup.labels.tablespaces ?? "").split(",").filter(Boolean)) {
    const oid = ts.split(".")[0]!;
    const dir = posix.join(data, TABLESPACE_DIR, oid);
    await sandboxSh(sandbox, 'mkdir -p "$1"', [dir]);
    await extractTar(sandbox, join(backup.location, ts), dir, ctx);
    // the link in the backup points at the original server's path; point it here
    await sandboxSh(sandbox, 'rm -f "$1" && ln -s "$2" "$1"', [posix.join(data, "pg_tblspc", oid), dir]);
    notes.push(`tablespace ${oid} extracted into ${TABLESPACE_DIR}/${oid}`);
  }
  return notes;
}
