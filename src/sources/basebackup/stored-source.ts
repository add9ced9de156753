/**
 * The `basebackup` source over a store (`storage:`): base backups under `path` (one prefix each)
 * and the WAL archive under `wal_archive`, listed through the storage layer into the same Backup
 * records and WalArchive the directory source builds (read-only calls only).
 */
import type { Backup, Finding } from "../../model.js";
import { createStorage } from "../../storage/create-storage.js";
import type { Storage } from "../../storage/storage.js";
import { UnlistedKeys } from "../../storage/unlisted-keys.js";
import { describeError, VerifierError } from "../../util/errors.js";
import { readStoredText, readStoredWalArchive, type StoredWalArchive } from "../../wal/stored-wal-archive.js";
import { latestRecoveryTimeline } from "../../wal/wal-continuity.js";
import type { SourceContext } from "../source.js";
import { parseBackupLabel } from "./backup-label.js";
import { backupRecord } from "./backup-record.js";
import type { BasebackupSourceConfig } from "./basebackup-config.js";
import { describeStoredBackup, keyPrefix, listStoredBackupObjects } from "./stored-basebackups.js";

/** What one listing of a stored basebackup source found. */
export interface StoredListing {
  backups: Backup[];
  findings: Finding[];
  archive?: StoredWalArchive;
}

/** Runs `fn` with the source's store open; closes it after. */
export async function withSourceStorage<T>(
  cfg: BasebackupSourceConfig,
  fn: (s: Storage) => Promise<T>,
): Promise<T> {
  const ref = cfg.storage;
  if (!ref?.config) throw new VerifierError(`storage "${ref?.name}" is not configured under storage:`);
  const storage = await createStorage(ref.name, ref.config);
  try {
    return await fn(storage);
  } finally {
    storage.close();
  }
}

/** The source's WAL archive from its listing (the newest plain segment's header gives the size). */
export async function readStoredArchive(
  cfg: BasebackupSourceConfig,
  storage: Storage,
  signal?: AbortSignal,
): Promise<StoredWalArchive | undefined> {
  if (!cfg.wal_archive) return undefined;
  return readStoredWalArchive(storage, keyPrefix(cfg.wal_archive), {
    readHeader: true,
    ...(cfg.wal_segment_size ? { segSize: cfg.wal_segment_size } : {}),
    ...(signal ? { signal } : {}),
  });
}

/** Lists the stored backups and the archive. */
export async function listStoredSource(
  cfg: BasebackupSourceConfig,
  ctx: SourceContext,
): Promise<StoredListing> {
  const signal = ctx.signal;
  return withSourceStorage(cfg, async (storage) => {
    const findings: Finding[] = [];
    const archive = await readStoredArchive(cfg, storage, signal);
    const backups: Backup[] = [];
    const unlisted = new UnlistedKeys();
    const groups = await listStoredBackupObjects(storage, keyPrefix(cfg.path), {
      onUnlisted: unlisted.onUnlisted,
      ...(signal ? { signal } : {}),
    });
    const left = unlisted.finding(cfg.name, storage.describe(keyPrefix(cfg.path)));
    if (left) findings.push(left);
    for (const group of groups) {
      if (signal?.aborted) break;
      const where = storage.describe(group.prefix);
      try {
        const d = await describeStoredBackup(storage, group, signal);
        if (!d) {
          findings.push({
            source: cfg.name,
            backupId: group.id,
            kind: "backup_unrecognized",
            severity: "warning",
            message: `${where} holds neither a base.tar* nor a backup_manifest`,
          });
          continue;
        }
        const b = await backupRecord(cfg, d, archive, {
          readHistory: async (name) => {
            const obj = archive?.objects.get(name) ?? archive?.objects.get(`${name}.gz`);
            const text = obj ? await readStoredText(storage, obj.key, signal) : undefined;
            return text === undefined ? undefined : parseBackupLabel(text);
          },
        });
        // the base tar's ETag as listed: a drill refuses a backup replaced since
        const etag = d.layout.kind === "tar" ? group.objects.get(d.layout.base)?.etag : undefined;
        b.stored = { storage: storage.name, key: group.prefix, ...(etag ? { etag } : {}) };
        // where the archive lives, for the record and the PITR planner (not a host path)
        if (archive) b.walArchive = { location: archive.dir };
        else delete b.walArchive;
        backups.push(b);
      } catch (err) {
        findings.push({
          source: cfg.name,
          backupId: group.id,
          kind: "backup_unreadable",
          severity: "warning",
          message: `${where}: ${describeError(err)}`,
        });
      }
    }
    if (archive && backups.length > 0) {
      // no pg_waldump over a bucket: the newest segment's upload time bounds the archive's end
      const idx = archive.index;
      const tli = latestRecoveryTimeline(idx);
      const newest = idx.files.get(tli)?.get(idx.segments.get(tli)?.at(-1) ?? -1);
      const at = newest ? archive.mtimeOf(newest) : undefined;
      if (newest && at)
        for (const b of backups)
          if (b.walArchive)
            b.walArchive.end = {
              time: at.toISOString(),
              from: `upload time of ${newest} (approximate: the segments are not read when listing)`,
            };
    }
    backups.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    return { backups, findings, ...(archive ? { archive } : {}) };
  });
}
