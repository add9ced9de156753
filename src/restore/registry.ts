/** Chooses the Restorer for a backup. The only place that knows every restorer. */
import type { SourceConfig } from "../config/schema.js";
import type { Backup } from "../model.js";
import { VerifierError } from "../util/errors.js";
import { GzippedArchiveRestorer } from "./logical/gzipped-archive-restorer.js";
import { LogicalRestorer } from "./logical/logical-restorer.js";
import { StoredDumpRestorer } from "./logical/stored-dump-restorer.js";
import { PhysicalRestorer } from "./physical/physical-restorer.js";
import type { Restorer } from "./restorer.js";
import { SnapshotRestorer } from "./snapshot/snapshot-restorer.js";
import { BarmanCloudRestorer } from "./tool/barman-cloud-restorer.js";
import { BarmanRestorer } from "./tool/barman-restorer.js";
import { PgbackrestRestorer } from "./tool/pgbackrest-restorer.js";

/** Returns the restorer for `backup` of `source`, or throws when none fits. */
export function restorerFor(backup: Backup, source: SourceConfig): Restorer {
  if (backup.family === "logical" && source.type === "dump-dir") {
    const logical = new LogicalRestorer({
      jobs: source.jobs,
      globals: source.globals,
      maxLineBytes: source.max_line,
      maxPlainBytes: source.max_decompressed,
    });
    const restorer = backup.format === "custom-gzip" ? new GzippedArchiveRestorer(logical) : logical;
    // a dump in a store is fetched into the sandbox first, then restored the same way
    return backup.stored && source.storage ? new StoredDumpRestorer(source.storage, restorer) : restorer;
  }
  if (backup.family === "physical" && source.type === "basebackup") {
    return new PhysicalRestorer({
      superuser: source.superuser,
      ...(source.wal_archive ? { walArchive: source.wal_archive } : {}),
    });
  }
  if (backup.family === "physical" && source.type === "barman") {
    return new BarmanRestorer({
      configFile: source.config_file,
      server: source.server,
      barmanUser: source.barman_user,
      superuser: source.superuser,
    });
  }
  if (backup.family === "snapshot" && source.type === "basebackup") {
    const { dataDir, labelFile, tablespaceMap } = backup.labels;
    return new SnapshotRestorer({
      superuser: source.superuser,
      ...(source.wal_archive ? { walArchive: source.wal_archive } : {}),
      ...(dataDir ? { copyFrom: dataDir } : {}),
      ...(labelFile ? { backupLabel: { path: labelFile } } : {}),
      ...(tablespaceMap ? { tablespaceMap: { path: tablespaceMap } } : {}),
    });
  }
  if (backup.family === "snapshot" && source.type === "oci-volume-backups") {
    // the clone is mounted as the sandbox's data directory (no copy); a kept label only helps
    // with the WAL archive: the backup's end lies past the snapshot, in archived WAL
    const { labelFile } = backup.labels;
    return new SnapshotRestorer({
      superuser: source.superuser,
      ...(source.wal_archive ? { walArchive: source.wal_archive } : {}),
      ...(labelFile && source.wal_archive ? { backupLabel: { path: labelFile } } : {}),
    });
  }
  if (backup.family === "physical" && source.type === "pgbackrest") {
    const { stanza, repo_path, config_file, repo, superuser } = source;
    return new PgbackrestRestorer({ stanza, repo_path, config_file, repo, superuser });
  }
  if (backup.family === "physical" && source.type === "barman-cloud") {
    const store = source.storage.config;
    if (store?.type !== "s3")
      throw new VerifierError(
        `barman-cloud source ${source.name}: storage ${source.storage.name} is not an s3 store`,
      );
    return new BarmanCloudRestorer({
      store,
      path: source.path,
      serverName: source.server_name,
      superuser: source.superuser,
    });
  }
  throw new VerifierError(`no restorer for ${backup.family} backups of source type ${source.type}`);
}
