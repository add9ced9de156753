/**
 * A dump that lives in a store (an S3 bucket): Attest reads the object from the store and pipes it
 * into a process inside the sandbox, which writes it into the sandbox's own directory (the same
 * path in both runtimes: the sandbox's exec with a stream on stdin; a container needs no network).
 * The file is then taken out of the sandbox's reach (`Sandbox.takeFile`) and restored as any dump
 * on disk. Nothing of the backup is written anywhere else on the host.
 */
import type { DrillPlan } from "../../model.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { openBoundedRead } from "../../storage/bounded-read.js";
import { createStorage } from "../../storage/create-storage.js";
import type { Storage } from "../../storage/storage.js";
import type { StoreRef } from "../../storage/store-ref.js";
import { formatBytes } from "../../util/duration.js";
import { BackupDefectError, coerceError, VerifierError } from "../../util/errors.js";
import type { RestoreContext, RestoreOutcome, Restorer } from "../restorer.js";

/** Fetches a stored dump into the sandbox, then hands it to the restorer of dumps on disk. */
export class StoredDumpRestorer implements Restorer {
  readonly name: string;
  readonly sandboxMode = "init" as const;
  readonly #store: StoreRef;
  readonly #inner: Restorer;

  constructor(store: StoreRef, inner: Restorer) {
    this.#store = store;
    this.#inner = inner;
    this.name = inner.name;
  }

  /** The dump is fetched inside the sandbox, so only the inner restorer's other inputs (globals). */
  inputs(plan: DrillPlan): string[] {
    return (this.#inner.inputs?.(plan) ?? []).filter((p) => p !== plan.backup.location);
  }

  async preflight(plan: DrillPlan): Promise<void> {
    // the content checks need the bytes: they run once the dump is in the sandbox
    const b = plan.backup;
    if (b.format === "unknown") throw new BackupDefectError(`${b.id}: ${b.problem ?? "not a pg_dump file"}`);
  }

  async restore(sandbox: Sandbox, ctx: RestoreContext): Promise<RestoreOutcome> {
    const b = ctx.plan.backup;
    if (!b.stored) throw new VerifierError(`${b.id}: no store named for a stored dump`);
    if (!this.#store.config) throw new VerifierError(`store "${this.#store.name}" is not configured`);
    if (!sandbox.takeFile)
      throw new VerifierError(
        `the ${sandbox.runtime} runtime cannot take a fetched dump out of its sandbox's reach`,
      );
    const storage = await createStorage(this.#store.name, this.#store.config);
    try {
      const started = Date.now();
      const fetched =
        b.format === "directory"
          ? await fetchDirectoryIntoSandbox(sandbox, storage, b.stored, ctx)
          : await fetchIntoSandbox(sandbox, storage, b.stored, b.sizeBytes, ctx);
      // the host-side checks (the TOC's copy statements and completeness, the scan of a plain
      // dump, the count of restored entries after pg_restore) read this file, some of them after
      // the backup's code ran in the sandbox: out of its reach first, so it cannot be swapped
      const path = await sandbox.takeFile(fetched);
      const note = `fetched ${storage.describe(b.stored.key)} (${formatBytes(b.sizeBytes)}${b.stored.etag ? `, ETag ${b.stored.etag}` : ""}) into the sandbox's directory in ${Date.now() - started} ms`;
      const plan: DrillPlan = { ...ctx.plan, backup: { ...b, location: path } };
      await this.#inner.preflight?.(plan, ctx.signal);
      const out = await this.#inner.restore(sandbox, { ...ctx, plan });
      return { ...out, notes: [note, ...out.notes] };
    } finally {
      storage.close();
    }
  }
}

type Stored = NonNullable<DrillPlan["backup"]["stored"]>;

const safeName = (key: string) => (key.split("/").pop() ?? "").replace(/[^A-Za-z0-9._-]/g, "_") || "dump";

/**
 * Fetches every object of a directory-format dump (the objects under its prefix, toc.dat still
 * the one listed) into `$HOME/attest-fetched/<dir>/`; returns that directory.
 */
async function fetchDirectoryIntoSandbox(
  sandbox: Sandbox,
  storage: Storage,
  stored: Stored,
  ctx: RestoreContext,
): Promise<string> {
  const dir = safeName(stored.key.replace(/\/$/, ""));
  const call = ctx.signal ? { signal: ctx.signal } : {};
  let path = "";
  let count = 0;
  for await (const o of storage.list(stored.key, call)) {
    const rel = o.key.slice(stored.key.length);
    // a directory dump is flat (toc.dat, NNNN.dat[.gz], blobs.toc): anything deeper is not its
    if (!rel || rel.includes("/")) continue;
    const etag = rel === "toc.dat" ? stored.etag : o.etag;
    const file = await fetchIntoSandbox(
      sandbox,
      storage,
      { ...stored, key: o.key, ...(etag ? { etag } : {}) },
      o.sizeBytes,
      ctx,
      dir,
    );
    path = file.slice(0, file.lastIndexOf("/"));
    count += 1;
  }
  if (count === 0) throw new VerifierError(`${storage.describe(stored.key)} holds no objects any more`);
  return path;
}

/** Streams the object to `$HOME/attest-fetched/[<subdir>/]<name>` inside the sandbox; returns that path. */
async function fetchIntoSandbox(
  sandbox: Sandbox,
  storage: Storage,
  stored: Stored,
  expectedBytes: number,
  ctx: RestoreContext,
  subdir = "",
): Promise<string> {
  const now = await storage.stat(stored.key, ctx.signal ? { signal: ctx.signal } : {});
  if (!now) throw new VerifierError(`${storage.describe(stored.key)} is gone since it was listed`);
  if (stored.etag && now.etag && now.etag !== stored.etag)
    throw new VerifierError(`${storage.describe(stored.key)} changed since it was listed (ETag ${now.etag})`);
  const name = safeName(stored.key);
  const read = await openBoundedRead(storage, stored.key, now.sizeBytes, {
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    onBytes: (n) => ctx.progress(`fetching ${formatBytes(n)} of ${formatBytes(expectedBytes)}`),
  });
  let out: string;
  try {
    const r = await sandbox.exec(
      "sh",
      [
        "-c",
        'umask 077 && mkdir -p "$HOME/attest-fetched/$2" && cd "$HOME/attest-fetched/$2" && cat > "$1" && pwd -P',
        "sh",
        name,
        subdir,
      ],
      { stdin: read.stream, timeoutMs: ctx.timeoutMs, ...(ctx.signal ? { signal: ctx.signal } : {}) },
    );
    out = r.stdout.trim();
  } catch (err) {
    const cause = read.failure() ?? err;
    throw new VerifierError(
      `fetching ${storage.describe(stored.key)} into the sandbox failed: ${coerceError(cause).message}`,
      { cause },
    );
  }
  const broken = read.failure();
  if (broken)
    throw new VerifierError(`fetching ${storage.describe(stored.key)} broke off: ${broken.message}`, {
      cause: broken,
    });
  if (read.bytes() !== now.sizeBytes)
    throw new VerifierError(
      `fetched ${read.bytes()} bytes of ${storage.describe(stored.key)}, which has ${now.sizeBytes}`,
    );
  return `${out}/${name}`;
}
