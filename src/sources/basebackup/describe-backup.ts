/** Tells what a subdirectory of a basebackup source holds, from its files (nothing extracted). */
import { closeSync, existsSync, readdirSync, readSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import type { BaseBackupLayout, WalIncluded } from "../../model.js";
import { openBackupFile, RefusedFile, readBackupFile } from "../../util/backup-file.js";
import { describeError } from "../../util/errors.js";
import { compressionOfName, readDecompressedHead } from "../../wal/compression.js";
import { type BackupLabel, labelOrProblem, type ManifestSummary, parseManifest } from "./backup-label.js";
import { headFiles } from "./tar-head.js";

/** How the backup's files are laid out (the Backup record carries it to the restorer). */
export type BackupLayout = BaseBackupLayout;

/** Everything read about one backup directory. */
export interface DescribedBackup {
  dir: string;
  id: string;
  layout: BackupLayout;
  /** base-plain | base-tar | base-tar-gz | base-tar-lz4 | base-tar-zst | snapshot | snapshot-label */
  format: string;
  label?: BackupLabel;
  manifest?: { path: string; summary: ManifestSummary; mtime: Date };
  pgMajor?: number;
  systemIdentifier?: string;
  /** Whether the backup carries the WAL it needs (pg_wal content, pg_wal.tar). */
  walIncluded: WalIncluded;
  sizeBytes: number;
  mtime: Date;
  /** What makes the backup unusable or doubtful. */
  problems: string[];
}

const TAR_BASES: ReadonlyArray<string> = [
  "base.tar",
  "base.tar.gz",
  "base.tgz",
  "base.tar.lz4",
  "base.tar.zst",
];
const HEAD_BYTES = 1 << 20;
/** Near the longest string this process can hold: a manifest larger than it could not be parsed. */
const MANIFEST_MAX_BYTES = 512 * 1024 * 1024;

/** A backup's file as text, read as readBackupFile does (no link, no special file, bounded). */
function readText(path: string, maxBytes: number): string {
  try {
    return readBackupFile(path, maxBytes).toString("utf8");
  } catch (err) {
    throw new Error(`${basename(path)} ${describeError(err)}`, { cause: err });
  }
}

/**
 * A small file of the backup (backup_label, PG_VERSION); undefined with the reason in `problems`
 * when the backup made it a link or special file. A filesystem error (EACCES, EIO) is thrown, as
 * any unreadable file of the directory is: the source skips the backup with a warning.
 */
function readSmall(path: string, problems: string[]): string | undefined {
  try {
    return readText(path, 1024 * 1024);
  } catch (err) {
    if (!(err instanceof Error && err.cause instanceof RefusedFile)) throw err;
    problems.push(describeError(err));
    return undefined;
  }
}

function dirSize(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += dirSize(p);
    else if (e.isFile()) n += statSync(p).size;
  }
  return n;
}

/** The system identifier: the first 8 bytes of pg_control. */
function systemIdentifierOf(dataDir: string): string | undefined {
  try {
    // never through a link, never a FIFO or a device (a disk's first bytes as the identifier)
    const fd = openBackupFile(join(dataDir, "global", "pg_control"));
    try {
      const b = Buffer.alloc(8);
      return readSync(fd, b, 0, 8, 0) === 8 ? b.readBigUInt64LE(0).toString() : undefined;
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

function majorOf(text: string | undefined): number | undefined {
  const m = /^(\d+)/.exec(text?.trim() ?? "");
  return m ? Number(m[1]) : undefined;
}

function hasWalSegments(dataDir: string): boolean {
  try {
    return readdirSync(join(dataDir, "pg_wal")).some((n) => /^[0-9A-F]{24}$/.test(n));
  } catch {
    return false;
  }
}

/** Describes `dir`; undefined when it is neither a base backup nor a data directory snapshot. */
export async function describeBackupDir(dir: string): Promise<DescribedBackup | undefined> {
  const has = (...p: string[]) => existsSync(join(dir, ...p));
  const problems: string[] = [];
  let layout: BackupLayout;
  let format: string;
  let labelText: string | undefined;
  let pgVersionText: string | undefined;
  let dataDir: string | undefined;

  if (has("PG_VERSION") && has("global")) {
    dataDir = dir;
    layout = has("backup_label") ? { kind: "plain" } : { kind: "snapshot", dataDir: dir };
    format = layout.kind === "plain" ? "base-plain" : "snapshot";
    if (has("backup_label")) labelText = readSmall(join(dir, "backup_label"), problems);
  } else if (has("data", "PG_VERSION")) {
    dataDir = join(dir, "data");
    const labelFile = has("backup_label")
      ? join(dir, "backup_label")
      : has("data", "backup_label")
        ? join(dataDir, "backup_label")
        : undefined;
    layout = {
      kind: "snapshot",
      dataDir,
      ...(labelFile ? { labelFile } : {}),
      ...(has("tablespace_map") ? { tablespaceMap: join(dir, "tablespace_map") } : {}),
    };
    format = labelFile ? "snapshot-label" : "snapshot";
    if (labelFile) labelText = readSmall(labelFile, problems);
  } else {
    const names = readdirSync(dir);
    const base = TAR_BASES.find((b) => names.includes(b));
    if (!base) return undefined;
    const compression = compressionOfName(base);
    const walTar = names.find((n) => /^pg_wal\.tar(\.(gz|lz4|zst))?$/.test(n));
    const tablespaces = names.filter((n) => /^\d+\.tar(\.(gz|lz4|zst))?$/.test(n));
    layout = {
      kind: "tar",
      base,
      ...(compression ? { compression } : {}),
      ...(walTar ? { walTar } : {}),
      tablespaces,
    };
    format = `base-tar${compression ? `-${compression}` : ""}`;
    try {
      const head = await readDecompressedHead(join(dir, base), compression, HEAD_BYTES);
      ({ labelText, pgVersionText } = headFiles(head, base, problems));
    } catch (err) {
      problems.push(`${base} cannot be read: ${describeError(err)}`);
    }
  }

  const label = labelText !== undefined ? labelOrProblem(labelText, problems) : undefined;

  let manifest: DescribedBackup["manifest"];
  const manifestPath = join(dir, "backup_manifest");
  if (existsSync(manifestPath)) {
    try {
      manifest = {
        path: manifestPath,
        summary: parseManifest(readText(manifestPath, MANIFEST_MAX_BYTES)),
        mtime: statSync(manifestPath).mtime,
      };
    } catch (err) {
      problems.push(describeError(err));
    }
  }

  if (dataDir)
    pgVersionText = existsSync(join(dataDir, "PG_VERSION"))
      ? readSmall(join(dataDir, "PG_VERSION"), problems)
      : undefined;
  const pgMajor = majorOf(pgVersionText);
  const systemIdentifier = dataDir ? systemIdentifierOf(dataDir) : manifest?.summary.systemIdentifier;
  const walIncluded =
    layout.kind === "tar"
      ? layout.walTar
        ? "yes"
        : "unknown"
      : dataDir && hasWalSegments(dataDir)
        ? "yes"
        : "no";
  return {
    dir,
    id: basename(dir),
    layout,
    format,
    ...(label ? { label } : {}),
    ...(manifest ? { manifest } : {}),
    ...(pgMajor !== undefined ? { pgMajor } : {}),
    ...(systemIdentifier ? { systemIdentifier } : {}),
    walIncluded,
    sizeBytes: dirSize(dir),
    mtime: manifest?.mtime ?? statSync(dir).mtime,
    problems,
  };
}
