/** Builds the Source adapter for a source configuration. The only place that knows every adapter. */
import type { SourceConfig } from "../config/schema.js";
import { BarmanSource } from "./barman/barman-source.js";
import { BarmanCloudSource } from "./barman-cloud/barman-cloud-source.js";
import { BasebackupSource } from "./basebackup/basebackup-source.js";
import { DumpDirSource } from "./dump-dir/dump-dir-source.js";
import { OciVolumeBackupsSource } from "./oci-volume-backups/oci-volume-source.js";
import { PgbackrestSource } from "./pgbackrest/pgbackrest-source.js";
import type { Source } from "./source.js";

/** Creates the adapter for one configured source. */
export function createSource(config: SourceConfig): Source {
  switch (config.type) {
    case "dump-dir":
      return new DumpDirSource(config);
    case "basebackup":
      return new BasebackupSource(config);
    case "barman":
      return new BarmanSource(config);
    case "oci-volume-backups":
      return new OciVolumeBackupsSource(config);
    case "pgbackrest":
      return new PgbackrestSource(config);
    case "barman-cloud":
      return new BarmanCloudSource(config);
  }
}
