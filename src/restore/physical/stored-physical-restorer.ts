/**
 * Restores a pg_basebackup whose tars and WAL archive live in a store (an S3 bucket): each tar is
 * streamed from the store into `tar -x` inside the sandbox, the manifest into the sandbox's own
 * directory for pg_verifybackup, and the WAL the target needs is prefetched into that directory
 * before recovery, whose restore_command only copies from it. Nothing of the backup is written
 * on the host outside the sandbox, and the restored server has no channel to the store.
 */
import { posix } from "node:path";
import { type Backup, type DrillPlan, detailOf, type RecoveryTarget } from "../../model.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { openBoundedRead } from "../../storage/bounded-read.js";
import { createStorage } from "../../storage/create-storage.js";
import type { Storage, StoredObject } from "../../storage/storage.js";
import type { StoreRef } from "../../storage/store-ref.js";
import { formatBytes } from "../../util/duration.js";
import { BackupDefectError, VerifierError } from "../../util/errors.js";
import { readStoredWalArchive } from "../../wal/stored-wal-archive.js";
import type { RestoreContext, RestoreOutcome, Restorer } from "../restorer.js";
import { containDataDir, TABLESPACE_DIR } from "./contain-data-dir.js";
import { extractTarStream } from "./extract.js";
import { checkReachedEnd, explainStop } from "./physical-restorer.js";
import { describeTarget } from "./recovery-config.js";
import { recoveryOutcome, runRecovery } from "./recovery-run.js";
import { sandboxSh } from "./sandbox-shell.js";
import { verifyBackup } from "./verify-backup.js";
import { prefetchWal, walToPrefetch } from "./wal-prefetch.js";

/** Options of the stored physical restorer. */
export interface StoredPhysicalRestorerOptions {
  store: StoreRef;
  /** Key prefix of the WAL archive in the store; absent without one. */
  walPrefix?: string;
  /** Superuser of the backed-up cluster (to connect before the sandbox's own login exists). */
  superuser: string;
}

/** Restores stored base backups with archive recovery from prefetched WAL. */
export class StoredPhysicalRestorer implements Restorer {
  readonly name = "physical";
  readonly sandboxMode = "empty" as const;
  readonly #opts: StoredPhysicalRestorerOptions;

  constructor(opts: StoredPhysicalRestorerOptions) {
    this.#opts = Object.freeze({ ...opts });
  }

  /** Everything comes from the store, through processes Attest feeds: no host path is an input. */
  inputs(): string[] {
    return [];
  }

  async preflight(plan: DrillPlan): Promise<void> {
    const b = plan.backup;
    if (b.problem) throw new BackupDefectError(`${b.id}: ${b.problem}`);
    if (!b.stored) throw new VerifierError(`${b.id}: no store named for a stored base backup`);
    if (!this.#opts.walPrefix && plan.target && plan.target.kind !== "immediate")
      throw new VerifierError(
        `a recovery target (${describeTarget(plan.target)}) needs a WAL archive; the source has no wal_archive`,
      );
  }

  async restore(sandbox: Sandbox, ctx: RestoreContext): Promise<RestoreOutcome> {
    const backup = ctx.plan.backup;
    await this.preflight(ctx.plan);
    const { store, walPrefix, superuser } = this.#opts;
    if (!store.config) throw new VerifierError(`store "${store.name}" is not configured`);
    // every byte reaches the sandbox on a process's stdin and every path is the sandbox's own:
    // the same in both runtimes
    const target: RecoveryTarget | undefined = walPrefix
      ? (ctx.plan.target ?? { kind: "immediate" })
      : undefined;
    const storage = await createStorage(store.name, store.config);
    try {
      const objects = await listBackupObjects(storage, backup, ctx);
      const notes = await extractStoredBackup(sandbox, storage, backup, objects, ctx);
      const manifest = objects.get("backup_manifest");
      if (manifest) {
        const path = await fetchFileIntoSandbox(sandbox, storage, manifest, ctx);
        notes.push(await verifyBackup(sandbox, path, ctx));
      } else notes.push("no backup_manifest: files not verified against a manifest");

      let archiveDir: string | undefined;
      const archive = walPrefix
        ? await readStoredWalArchive(storage, walPrefix, {
            segSize: detailOf(backup, "basebackup")?.walSegmentSize,
            ...(ctx.signal ? { signal: ctx.signal } : {}),
          })
        : undefined;
      if (archive) {
        const wanted = walToPrefetch(archive, backup, target);
        const started = Date.now();
        archiveDir = await prefetchWal(sandbox, storage, wanted, ctx);
        notes.push(
          `prefetched ${wanted.length} WAL objects (${formatBytes(wanted.reduce((n, o) => n + o.sizeBytes, 0))}) from ${storage.describe(walPrefix!)} into the sandbox's directory in ${Date.now() - started} ms; restore_command copies from there`,
        );
      }
      ctx.progress(`recovering to ${target ? describeTarget(target) : "the end of the backup's own WAL"}`);
      const result = await runRecovery(sandbox, ctx, {
        ...(target ? { target } : {}),
        ...(archiveDir ? { archiveDir } : {}),
        superuser,
        ...(backup.walRange ? { startLsn: backup.walRange.startLsn } : {}),
        ...(archive ? { explainStop: (facts) => explainStop(archive, facts, backup) } : {}),
      });
      if (target?.kind === "latest" && archive) checkReachedEnd(archive, result);
      return recoveryOutcome(result, notes);
    } finally {
      storage.close();
    }
  }
}

/** The backup's objects as they are now, by name (a listing at drill time). */
async function listBackupObjects(
  storage: Storage,
  backup: Backup,
  ctx: RestoreContext,
): Promise<Map<string, StoredObject>> {
  const prefix = backup.stored!.key;
  const out = new Map<string, StoredObject>();
  for await (const o of storage.list(prefix, ctx.signal ? { signal: ctx.signal } : {})) {
    const rel = o.key.slice(prefix.length);
    if (rel && !rel.includes("/")) out.set(rel, o);
  }
  return out;
}

/** Streams one stored tar into `dest` inside the sandbox; a store failure is `error`, a bad tar `fail`. */
async function extractStoredTar(
  sandbox: Sandbox,
  storage: Storage,
  obj: StoredObject,
  dest: string,
  ctx: RestoreContext,
): Promise<number> {
  const name = obj.key.slice(obj.key.lastIndexOf("/") + 1);
  const read = await openBoundedRead(
    storage,
    obj.key,
    obj.sizeBytes,
    ctx.signal ? { signal: ctx.signal } : {},
  );
  try {
    await extractTarStream(sandbox, name, read.stream, dest, ctx);
  } catch (err) {
    if (!read.failure()) throw err;
  }
  const broken = read.failure();
  if (broken)
    throw new VerifierError(`reading ${storage.describe(obj.key)} broke off: ${broken.message}`, {
      cause: broken,
    });
  return read.bytes();
}

/** Fills the data directory from the stored tars (base, pg_wal, tablespaces); returns notes. */
async function extractStoredBackup(
  sandbox: Sandbox,
  storage: Storage,
  backup: Backup,
  objects: Map<string, StoredObject>,
  ctx: RestoreContext,
): Promise<string[]> {
  const layout = detailOf(backup, "basebackup")?.layout;
  if (layout?.kind !== "tar")
    throw new VerifierError(`${backup.id}: not a stored base backup layout (${layout?.kind})`);
  const need = (name: string): StoredObject => {
    const o = objects.get(name);
    if (!o)
      throw new BackupDefectError(
        `${storage.describe(`${backup.stored!.key}${name}`)} is missing: the backup cannot be restored`,
      );
    return o;
  };
  const notes: string[] = [];
  const data = sandbox.dataDir;
  const base = need(layout.base);
  const listed = backup.stored?.etag;
  if (listed && base.etag && base.etag !== listed)
    throw new VerifierError(
      `${storage.describe(base.key)} changed since it was listed (ETag ${base.etag}, listed ${listed})`,
    );
  const bytes = await extractStoredTar(sandbox, storage, base, data, ctx);
  notes.push(
    `streamed ${storage.describe(base.key)} (${formatBytes(bytes)}${base.etag ? `, ETag ${base.etag}` : ""}) into the sandbox and extracted it there`,
  );
  const oids = layout.tablespaces.map((ts) => ts.split(".")[0]!);
  // before anything more is written: a pg_wal link or a planted link must not be written through
  notes.push(...(await containDataDir(sandbox, { extractedTablespaces: oids, keepMap: true })));
  if (layout.walTar) {
    const wal = need(layout.walTar);
    const n = await extractStoredTar(sandbox, storage, wal, posix.join(data, "pg_wal"), ctx);
    notes.push(`extracted ${layout.walTar} into pg_wal (${formatBytes(n)})`);
  }
  for (const [i, ts] of layout.tablespaces.entries()) {
    const dir = posix.join(data, TABLESPACE_DIR, oids[i]!);
    await sandboxSh(sandbox, 'mkdir -p "$1"', [dir]);
    await extractStoredTar(sandbox, storage, need(ts), dir, ctx);
    notes.push(`tablespace ${oids[i]} extracted into ${TABLESPACE_DIR}/${oids[i]}`);
  }
  notes.push(...(await containDataDir(sandbox, { extractedTablespaces: oids, keepMap: true })));
  return notes;
}

/** Streams a small object to `$HOME/attest-fetched/<name>` inside the sandbox; returns that path (the sandbox's). */
async function fetchFileIntoSandbox(
  sandbox: Sandbox,
  storage: Storage,
  obj: StoredObject,
  ctx: RestoreContext,
): Promise<string> {
  const name = obj.key.slice(obj.key.lastIndexOf("/") + 1).replace(/[^A-Za-z0-9._-]/g, "_");
  const read = await openBoundedRead(
    storage,
    obj.key,
    obj.sizeBytes,
    ctx.signal ? { signal: ctx.signal } : {},
  );
  const r = await sandboxSh(
    sandbox,
    'umask 077 && mkdir -p "$HOME/attest-fetched" && cd "$HOME/attest-fetched" && cat > "$1" && wc -c < "$1" && pwd -P',
    [name],
    {
      stdin: read.stream,
      timeoutMs: ctx.timeoutMs,
      allowFailure: true,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    },
  );
  const [size, dir] = r.stdout.trim().split("\n");
  const broken = read.failure();
  if (broken || r.code !== 0 || Number(size) !== obj.sizeBytes)
    throw new VerifierError(
      `fetching ${storage.describe(obj.key)} into the sandbox failed: ${broken?.message ?? (r.stderrTail || `${size} bytes of ${obj.sizeBytes}`)}`,
    );
  return `${dir}/${name}`;
}
