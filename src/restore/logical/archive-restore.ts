/**
 * Runs pg_restore on one archive and then checks what it reported against the archive's TOC:
 * an exit status of 0 says nothing failed, not that every data entry was loaded.
 */
import type { Sandbox } from "../../runtimes/runtime.js";
import { BackupDefectError, coerceError } from "../../util/errors.js";
import { ProcessError } from "../../util/process.js";
import type { RestoreContext } from "../restorer.js";
import { dataEntries, describeEntry, dumpContent, RestoredData } from "./archive-completeness.js";
import { readToc, type TocEntry } from "./archive-toc.js";

/** One archive to restore. */
export interface ArchiveFile {
  id: string;
  location: string;
  format: string;
}

/**
 * Restores `file` into `db` with `pg_restore --exit-on-error --verbose` (plus `extraArgs`), and
 * returns a note saying how many of the TOC's data entries were restored. A data entry pg_restore
 * did not report is a BackupDefectError naming the table.
 */
export async function restoreArchive(
  sandbox: Sandbox,
  file: ArchiveFile,
  db: string,
  ctx: RestoreContext,
  jobs: number,
  extraArgs: string[] = [],
): Promise<string> {
  const args = ["--exit-on-error", "--no-password", "--verbose", ...extraArgs, "-d", db];
  // tar archives cannot be restored in parallel
  if (file.format !== "tar" && jobs > 1) args.push("-j", String(jobs));
  args.push(sandbox.inputPath(file.location));
  const seen = new RestoredData();
  try {
    await sandbox.exec("pg_restore", args, {
      timeoutMs: ctx.timeoutMs,
      signal: ctx.signal,
      onStderrLine: (l) => seen.line(l),
    });
  } catch (err) {
    const e = coerceError(err);
    // the progress lines of --verbose would crowd the reason out of the tail: keep the others
    if (e instanceof ProcessError && e.result && seen.problemTail)
      throw new ProcessError(e.message, { ...e.result, stderrTail: seen.problemTail }, { cause: e });
    throw e;
  }
  let toc: TocEntry[];
  try {
    toc = readToc(file.location, file.format);
  } catch {
    // pg_restore read a TOC this reader does not know (a newer archive version): it judged it
    return `${file.id}: restored by pg_restore (its TOC is of a version Attest cannot read to count data entries)`;
  }
  if (extraArgs.some((a) => a.startsWith("--section")) && !extraArgs.includes("--section=data"))
    return `${file.id}: ${extraArgs.join(" ")} restored`;
  const missing = seen.missing(toc);
  if (missing.length) {
    const names = missing.slice(0, 3).map(describeEntry).join(", ");
    throw new BackupDefectError(
      `${file.id}: pg_restore did not restore ${missing.length} data entr${missing.length === 1 ? "y" : "ies"} of the archive's TOC: ${names}${missing.length > 3 ? ", …" : ""}`,
    );
  }
  const content = dumpContent(toc);
  const n = dataEntries(toc).length;
  return `${file.id}: all ${n} data entr${n === 1 ? "y" : "ies"} of the TOC restored${content === "full" ? "" : ` (a ${content} dump)`}`;
}
