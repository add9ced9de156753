/** What a dump says of itself, from its detected header: the same for a file and a bucket object. */
import type { Backup, DumpDetail } from "../../model.js";
import { majorOfVersion, seriesFromName, timestampFromName } from "./archive-header.js";
import type { Detected } from "./detect-format.js";
import { SERIES_FROM_CLUSTER_FILE, SERIES_FROM_FILE } from "./series-names.js";

/** The part of a dump's Backup record its content decides: series, format, time, major, facts, labels. */
export type DumpFacts = Omit<Backup, "source" | "id" | "sizeBytes" | "location" | "stored" | "detail"> & {
  detail: DumpDetail;
};

/**
 * The facts of dump `rel` (its path under the source), named `name` for its series when nothing
 * in it names its database; `stored()` is the time its storage recorded (a file's mtime, an
 * object's LastModified), used only when neither the header nor the name has a better one.
 */
export function dumpFacts(d: Detected, rel: string, name: string, stored: () => Date): DumpFacts {
  const dbname = d.archive?.dbname ?? d.plain?.dbname;
  const serverVersion = d.archive?.serverVersion ?? d.plain?.serverVersion;
  const labels: Record<string, string> = {};
  const dumpVersion = d.archive?.dumpVersion ?? d.plain?.dumpVersion;
  const dumpMajor = majorOfVersion(dumpVersion);
  const detail: DumpDetail = {
    kind: "dump",
    scope: d.plain?.kind === "cluster" ? "cluster" : "database",
    ...(dumpMajor !== undefined ? { dumpMajor } : {}),
    ...(d.plain?.createsPlpgsql ? { createsPlpgsql: true } : {}),
    ...(d.plain?.databases ? { clusterDatabases: true } : {}),
  };
  // nothing in the dump names its database (plain without -C) or it is a whole cluster
  if (!dbname && !d.problem)
    detail.seriesFrom = d.plain?.kind === "cluster" ? SERIES_FROM_CLUSTER_FILE : SERIES_FROM_FILE;
  if (serverVersion) labels.serverVersion = serverVersion;
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
    family: "logical",
    format: d.format,
    createdAt: createdAt.toISOString(),
    createdAtOrigin,
    ...(pgMajor !== undefined ? { pgMajor } : {}),
    ...(d.problem ? { problem: d.problem } : {}),
    detail,
    labels,
  };
}
