/**
 * Puts a base backup into the sandbox's empty data directory, as the sandbox user: a plain
 * backup is copied, tar members are streamed into a decompressor and `tar -x` that both run
 * inside the sandbox (the host only reads the file's bytes). No intermediate copy is made.
 * Paths the backup names (links, tablespace_map) are kept inside the sandbox (contain-data-dir).
 */
import { createReadStream } from "node:fs";
import { join, posix } from "node:path";
import type { Readable } from "node:stream";
import { type Backup, detailOf } from "../../model.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { openBackupFile, RefusedFile } from "../../util/backup-file.js";
import { formatBytes } from "../../util/duration.js";
import { BackupDefectError, describeError, VerifierError } from "../../util/errors.js";
import { compressionOfName } from "../../wal/compression.js";
import type { RestoreContext } from "../restorer.js";
import { containDataDir, TABLESPACE_DIR } from "./contain-data-dir.js";
import { sandboxSh } from "./sandbox-shell.js";

export { TABLESPACE_DIR };

// tar complaints that mean the archive itself is bad, not the machine
const TAR_DEFECT =
  /Unexpected EOF|does not look like a tar archive|Skipping to next header|checksum error|Damaged tar archive|invalid tar magic|A lone zero block/i;
const TAR_MACHINE = /No space left on device|Disk quota exceeded|Permission denied|Read-only file system/i;

const DECOMPRESSOR = { gz: "gzip", lz4: "lz4", zst: "zstd" } as const;

// fd 3 carries both exit codes out: the pipeline's status is only tar's
const EXTRACT_SCRIPT = [
  "dec=$1; dest=$2; shift 2",
  // a runtime may hand over the data directory's parent only
  'mkdir -p -m 700 "$dest" || exit 1',
  '{ { if [ "$dec" = cat ]; then cat; else "$dec" -dc; fi; echo "dec=$?" >&3; } | tar -x -f - -C "$dest" --no-same-owner --warning=no-timestamp; echo "tar=$?" >&3; } 3>&1',
].join("\n");

/** Streams one (possibly compressed) tar file into `destDir` inside the sandbox. */
export async function extractTar(
  sandbox: Sandbox,
  hostFile: string,
  destDir: string,
  ctx: RestoreContext,
): Promise<number> {
  const name = hostFile.split("/").pop()!;
  // read as root: a link to a host file is not followed and a FIFO is not waited on (it would
  // hold a thread of this process past every timeout); the descriptor is what is streamed
  let fd: number;
  try {
    fd = openBackupFile(hostFile);
  } catch (err) {
    if (err instanceof RefusedFile)
      throw new BackupDefectError(`${name} ${describeError(err)}`, { cause: err });
    throw new VerifierError(`cannot read ${hostFile}: ${describeError(err)}`, { cause: err });
  }
  return extractTarStream(sandbox, name, createReadStream("", { fd, highWaterMark: 1 << 20 }), destDir, ctx);
}

/**
 * Extracts a (possibly compressed, by `name`'s suffix) tar read from `file` (a host file, a stored
 * object's body) into `destDir` inside the sandbox; returns the bytes read.
 */
export async function extractTarStream(
  sandbox: Sandbox,
  name: string,
  file: Readable,
  destDir: string,
  ctx: RestoreContext,
): Promise<number> {
  const compression = compressionOfName(name);
  let read = 0;
  file.on("data", (b) => {
    read += b.length;
  });
  const timer = setInterval(() => ctx.progress(`extracting ${name}: ${formatBytes(read)} read`), 2000);
  timer.unref();
  let result: Awaited<ReturnType<Sandbox["exec"]>>;
  try {
    result = await sandboxSh(
      sandbox,
      EXTRACT_SCRIPT,
      [compression ? DECOMPRESSOR[compression] : "cat", destDir],
      {
        stdin: file,
        timeoutMs: Math.max(60_000, ctx.timeoutMs),
        allowFailure: true,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      },
    );
  } catch (err) {
    throw new VerifierError(`could not extract ${name} into the sandbox: ${describeError(err)}`, {
      cause: err,
    });
  } finally {
    clearInterval(timer);
    file.destroy();
  }
  const codes = Object.fromEntries(
    [...result.stdout.matchAll(/^(dec|tar)=(\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]),
  );
  const msg = result.stderrTail || `exit code ${result.code}`;
  if (result.timedOut) throw new VerifierError(`extracting ${name} timed out: ${msg}`);
  if (codes.dec === undefined || codes.tar === undefined)
    throw new VerifierError(`could not extract ${name} into the sandbox: ${msg}`);
  if (codes.tar !== 0 && (TAR_MACHINE.test(msg) || /Cannot open|Cannot mkdir/.test(msg)))
    throw new VerifierError(`could not extract ${name} into the sandbox: ${msg}`);
  // 141: the decompressor got SIGPIPE because tar stopped reading; tar's own message says why
  if (codes.dec !== 0 && codes.dec !== 141) {
    const why = msg
      .split("\n")
      .filter((l) => /gzip|lz4|zstd|Error|error|unexpected/.test(l) && !/^tar:/.test(l))
      .slice(-1)[0];
    throw new BackupDefectError(`${name} is truncated or corrupt: ${why ?? msg}`);
  }
  if (codes.tar !== 0) {
    if (TAR_DEFECT.test(msg) && !TAR_MACHINE.test(msg))
      throw new BackupDefectError(`${name} is not a complete tar archive: ${msg}`);
    throw new VerifierError(`could not extract ${name} into the sandbox: ${msg}`);
  }
  return read;
}

/** Fills the sandbox's data directory from the backup; returns notes for the record. */
export async function extractBackup(
  sandbox: Sandbox,
  backup: Backup,
  ctx: RestoreContext,
): Promise<string[]> {
  const notes: string[] = [];
  const data = sandbox.dataDir;
  const layout = detailOf(backup, "basebackup")?.layout;
  if (layout?.kind === "plain") {
    ctx.progress(`copying ${backup.id}`);
    const src = sandbox.inputPath(backup.location);
    // -P: a link is copied as a link, never followed (containDataDir deals with it next)
    const r = await sandboxSh(
      sandbox,
      'mkdir -p -m 700 "$2" && cp -RP --preserve=mode,timestamps -- "$1/." "$2/"',
      [src, data],
      {
        timeoutMs: Math.max(60_000, ctx.timeoutMs),
        allowFailure: true,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      },
    );
    if (r.code !== 0) {
      const msg = r.stderrTail || `cp exited with code ${r.code}`;
      if (/No such file|Input\/output error/.test(msg) && !TAR_MACHINE.test(msg))
        throw new BackupDefectError(`copying ${backup.id} failed: ${msg}`);
      throw new VerifierError(`could not copy ${backup.id} into the sandbox: ${msg}`);
    }
    notes.push(`copied plain backup ${backup.id}`);
    notes.push(...(await containDataDir(sandbox, { copiedFrom: backup.location, keepMap: true })));
    return notes;
  }
  if (layout?.kind !== "tar")
    throw new VerifierError(`${backup.id}: not a base backup layout this restorer knows (${layout?.kind})`);
  const bytes = await extractTar(sandbox, join(backup.location, layout.base), data, ctx);
  notes.push(`extracted ${layout.base} (${formatBytes(bytes)} read)`);
  const { tablespaces } = layout;
  const oids = tablespaces.map((ts) => ts.split(".")[0]!);
  // before anything more is written: a pg_wal link or a planted link must not be written through
  notes.push(...(await containDataDir(sandbox, { extractedTablespaces: oids, keepMap: true })));
  if (layout.walTar) {
    const walBytes = await extractTar(
      sandbox,
      join(backup.location, layout.walTar),
      posix.join(data, "pg_wal"),
      ctx,
    );
    notes.push(`extracted ${layout.walTar} into pg_wal (${formatBytes(walBytes)})`);
  }
  for (const [i, ts] of tablespaces.entries()) {
    const oid = oids[i]!;
    const dir = posix.join(data, TABLESPACE_DIR, oid);
    await sandboxSh(sandbox, 'mkdir -p "$1"', [dir]);
    await extractTar(sandbox, join(backup.location, ts), dir, ctx);
    notes.push(`tablespace ${oid} extracted into ${TABLESPACE_DIR}/${oid}`);
  }
  // the tablespace links name the original server's paths: pointed here (tablespace_map after pg_verifybackup)
  notes.push(...(await containDataDir(sandbox, { extractedTablespaces: oids, keepMap: true })));
  return notes;
}
