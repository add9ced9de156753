/**
 * pg_basebackup tar output uploaded to a store, one backup per prefix (`<path><id>/base.tar[.gz|.zst]`,
 * `pg_wal.tar*`, `<oid>.tar*`, `backup_manifest`), described as describe-backup.ts describes a
 * directory: from the manifest and the tar's head, read as a byte range (nothing downloaded whole).
 */
import { constants, gunzipSync } from "node:zlib";
import type { ListOptions, Storage, StoredObject } from "../../storage/storage.js";
import { describeError } from "../../util/errors.js";
import { compressionOfName } from "../../wal/compression.js";
import { type BackupLabel, labelOrProblem, type ManifestSummary, parseManifest } from "./backup-label.js";
import type { DescribedBackup } from "./describe-backup.js";
import { headFiles } from "./tar-head.js";

/** The objects of one stored backup, by their name below its prefix. */
export interface StoredBackupObjects {
  id: string;
  /** `<path><id>/`. */
  prefix: string;
  objects: Map<string, StoredObject>;
}

const TAR_BASES: ReadonlyArray<string> = [
  "base.tar",
  "base.tar.gz",
  "base.tgz",
  "base.tar.zst",
  "base.tar.lz4",
];
const WAL_TAR = /^pg_wal\.tar(\.(gz|lz4|zst))?$/;
const TABLESPACE_TAR = /^\d+\.tar(\.(gz|lz4|zst))?$/;
/** backup_label and PG_VERSION are the first members pg_basebackup writes: a few KiB suffice. */
const HEAD_BYTES = 256 * 1024;
const MANIFEST_MAX_BYTES = 64 * 1024 * 1024;

/** Normalises a key prefix: no leading slash, one trailing slash ("" for the root). */
export function keyPrefix(path: string): string {
  const p = path.replace(/^\/+/, "").replace(/\/+$/, "");
  return p ? `${p}/` : "";
}

/** Groups the objects under `prefix` by the first path element below it (one backup each). */
export async function listStoredBackupObjects(
  storage: Storage,
  prefix: string,
  opts: ListOptions = {},
): Promise<StoredBackupObjects[]> {
  const byId = new Map<string, StoredBackupObjects>();
  for await (const o of storage.list(prefix, opts)) {
    const m = /^([^/]+)\/([^/]+)$/.exec(o.key.slice(prefix.length));
    if (!m) continue;
    const id = m[1]!;
    let group = byId.get(id);
    if (!group) {
      group = { id, prefix: `${prefix}${id}/`, objects: new Map() };
      byId.set(id, group);
    }
    group.objects.set(m[2]!, o);
  }
  return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
}

/** The first bytes of a stored tar, decompressed in memory; undefined for lz4 / zstd (read at drill time). */
async function tarHead(storage: Storage, key: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  const compression = compressionOfName(key);
  const call = signal ? { signal } : {};
  if (compression === undefined) return storage.readRange(key, 0, HEAD_BYTES, call);
  if (compression !== "gz") return undefined;
  // a cut gzip stream inflates as far as it goes: the head's members are complete long before
  const raw = await storage.readRange(key, 0, HEAD_BYTES, call);
  return gunzipSync(raw, { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, 4 * HEAD_BYTES);
}

/** A backup_label stand-in from the manifest's WAL range (a zstd or lz4 tar's head is not read). */
function labelFromManifest(m: ManifestSummary): BackupLabel | undefined {
  const r = m.walRanges[0];
  return r
    ? {
        startLsn: r.startLsn,
        timeline: r.timeline,
        notes: ["start position from backup_manifest (the compressed tar's head is not read when listing)"],
      }
    : undefined;
}

/** Describes one stored backup; undefined when its prefix holds neither a base tar nor a manifest. */
export async function describeStoredBackup(
  storage: Storage,
  group: StoredBackupObjects,
  signal?: AbortSignal,
): Promise<DescribedBackup | undefined> {
  const names = [...group.objects.keys()];
  const base = TAR_BASES.find((b) => names.includes(b));
  const manifestObj = group.objects.get("backup_manifest");
  if (!base && !manifestObj) return undefined;
  const problems: string[] = [];
  const key = (name: string) => `${group.prefix}${name}`;

  let manifest: DescribedBackup["manifest"];
  if (manifestObj) {
    try {
      const text = (
        await storage.readRange(manifestObj.key, 0, MANIFEST_MAX_BYTES, signal ? { signal } : {})
      ).toString("utf8");
      manifest = {
        path: storage.describe(manifestObj.key),
        summary: parseManifest(text),
        mtime: manifestObj.lastModified,
      };
    } catch (err) {
      problems.push(describeError(err));
    }
  }

  let labelText: string | undefined;
  let pgVersionText: string | undefined;
  const compression = base ? compressionOfName(base) : undefined;
  if (!base) {
    problems.push(
      `${storage.describe(group.prefix)} has a backup_manifest but no base.tar (the backup's data is missing)`,
    );
  } else {
    try {
      const head = await tarHead(storage, key(base), signal);
      if (head) ({ labelText, pgVersionText } = headFiles(head, base, problems));
    } catch (err) {
      problems.push(`${base} cannot be read: ${describeError(err)}`);
    }
  }

  let label: BackupLabel | undefined;
  if (labelText !== undefined) label = labelOrProblem(labelText, problems);
  else if (manifest && base && compression && compression !== "gz") {
    label = labelFromManifest(manifest.summary);
  }

  const walTar = names.find((n) => WAL_TAR.test(n));
  const tablespaces = names.filter((n) => TABLESPACE_TAR.test(n)).sort();
  const major = /^(\d+)/.exec(pgVersionText?.trim() ?? "");
  const objects = [...group.objects.values()];
  const newest = objects.reduce((a, o) => (o.lastModified > a ? o.lastModified : a), new Date(0));
  return {
    dir: storage.describe(group.prefix),
    id: group.id,
    layout: {
      kind: "tar",
      base: base ?? "base.tar",
      ...(compression ? { compression } : {}),
      ...(walTar ? { walTar } : {}),
      tablespaces,
    },
    format: `base-tar${compression ? `-${compression}` : ""}`,
    ...(label ? { label } : {}),
    ...(manifest ? { manifest } : {}),
    ...(major ? { pgMajor: Number(major[1]) } : {}),
    ...(manifest?.summary.systemIdentifier ? { systemIdentifier: manifest.summary.systemIdentifier } : {}),
    walIncluded: walTar ? "yes" : "unknown",
    sizeBytes: objects.reduce((n, o) => n + o.sizeBytes, 0),
    mtime: manifest?.mtime ?? newest,
    problems,
  };
}
