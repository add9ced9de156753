/** What a dump says of itself, from its detected header: the same for a file and a bucket object. */
import type { Backup } from "../../model.js";
import { majorOfVersion, seriesFromName, timestampFromName } from "./archive-header.js";
import type { Detected } from "./detect-format.js";
import { SERIES_FROM_CLUSTER_FILE, SERIES_FROM_FILE } from "./series-names.js";

/** A dump's series, labels, major and dump time. */
export interface DumpFacts {
  series: string;
  labels: Record<string, string>;
  pgMajor?: number;
  createdAt: Date;
  createdAtOrigin: Backup["createdAtOrigin"];
}

/**
 * The facts of dump `rel` (its path under the source), named `name` for its series when nothing
 * in it names its database; `stored()` is the time its storage recorded (a file's mtime, an
 * object's LastModified), used only when neither the header nor the name has a better one.
 */
export function dumpFacts(d: Detected, rel: string, name: string, stored: () => Date): DumpFacts {
  const dbname = d.archive?.dbname ?? d.plain?.dbname;
  const serverVersion = d.archive?.serverVersion ?? d.plain?.serverVersion;
  const labels: Record<string, string> = {};
  if (d.problem) labels.problem = d.problem;
  // nothing in the dump names its database (plain without -C) or it is a whole cluster
  if (!dbname && !d.problem)
    labels.seriesFrom = d.plain?.kind === "cluster" ? SERIES_FROM_CLUSTER_FILE : SERIES_FROM_FILE;
  if (d.plain?.createsPlpgsql) labels.createsPlpgsql = "yes";
  if (d.plain?.kind === "cluster") labels.kind = "cluster";
  if (d.plain?.databases) labels.clusterDatabases = "yes";
  if (serverVersion) labels.serverVersion = serverVersion;
  const dumpVersion = d.archive?.dumpVersion ?? d.plain?.dumpVersion;
  if (dumpVersion) labels.dumpVersion = dumpVersion;
  if (d.archive) labels.archiveVersion = d.archive.version;
  const fromHeader = d.archive?.createdAt ?? d.plain?.startedAt;
  const fromName = timestampFromName(rel);
  const [createdAt, createdAtOrigin]: [Date, Backup["createdAtOrigin"]] = fromHeader
    ? [fromHeader, "header"]
    : fromName
      ? [fromName, "name"]
      : [stored(), "mtime"];
  const pgMajor = majorOfVersion(serverVersion);
  return {
    series: dbname ?? seriesFromName(name),
    labels,
    ...(pgMajor !== undefined ? { pgMajor } : {}),
    createdAt,
    createdAtOrigin,
  };
}
