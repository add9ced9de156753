/**
 * Series of a dump directory after listing: a dump that does not name its database (a plain
 * dump made without -C) joins the database of a dump of the same file stem that does (an
 * archive's header, a -C dump), and a pg_dumpall file's series never merges with a database's.
 */
import { type Backup, detailOf } from "../../model.js";
import { seriesFromName } from "./archive-header.js";

/** `seriesFrom` of a backup whose series is its file's stem (nothing in it names the database). */
export const SERIES_FROM_FILE = "file name";
/** `seriesFrom` of a pg_dumpall file's series (the file's stem: one series per cluster dumped). */
export const SERIES_FROM_CLUSTER_FILE = "cluster file name";

/** `seriesFrom` prefix of a backup whose series another dump of the same file stem named. */
export const SERIES_FROM_DUMP = "dump of the same name: ";

/** What the drill record says about the restored database's name, when no header gave it. */
export function seriesNote(b: Backup): string | undefined {
  const from = detailOf(b, "dump")?.seriesFrom;
  if (from === SERIES_FROM_FILE)
    return `restored as database ${JSON.stringify(b.series)}, named after the file: this plain dump was made without -C and does not name its database`;
  if (from?.startsWith(SERIES_FROM_DUMP))
    return `restored as database ${JSON.stringify(b.series)}, the database ${from.slice(SERIES_FROM_DUMP.length)} of the same file name was dumped from: this plain dump was made without -C and does not name its own`;
  return undefined;
}

/** The stem of a backup's file name (date stamps and extensions removed). */
function stemOf(b: Backup): string {
  const parts = b.id.split("/");
  const last = parts.pop() ?? b.id;
  return seriesFromName(last === "toc.dat" ? (parts.pop() ?? last) : last);
}

/** Renames series in place, as the module comment says; `seriesFrom` says where each name came from. */
export function settleSeriesNames(backups: Backup[]): void {
  const seriesFrom = (b: Backup) => detailOf(b, "dump")?.seriesFrom;
  const named = new Map<string, Map<string, string>>();
  for (const b of backups) {
    if (seriesFrom(b) || b.format === "unknown") continue;
    const stem = stemOf(b);
    const dbs = named.get(stem) ?? new Map<string, string>();
    if (!dbs.has(b.series)) dbs.set(b.series, b.id);
    named.set(stem, dbs);
  }
  const databases = new Set(backups.filter((b) => !seriesFrom(b)).map((b) => b.series));
  for (const b of backups) {
    const dump = detailOf(b, "dump");
    if (dump?.seriesFrom === SERIES_FROM_FILE) {
      const dbs = named.get(stemOf(b));
      // only one database under this stem: two would leave the file's own database unknown
      if (dbs?.size !== 1) continue;
      const [db, from] = [...dbs][0]!;
      b.series = db;
      dump.seriesFrom = `${SERIES_FROM_DUMP}${from}`;
    } else if (dump?.seriesFrom === SERIES_FROM_CLUSTER_FILE && databases.has(b.series)) {
      b.series = `${b.series} (cluster)`;
    }
  }
}
