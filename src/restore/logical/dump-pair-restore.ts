/**
 * Restores a schema/data pair of archives as one backup, the way a DBA loads them by hand but
 * with the data before the indexes and constraints: the schema dump's pre-data section, then the
 * data dump (checked against its TOC like any archive), then the schema dump's post-data section.
 * (A pair of plain SQL dumps runs through psql one after the other, in the logical restorer.)
 */
import type { Backup } from "../../model.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { pairedSchema } from "../../sources/dump-dir/dump-pairs.js";
import { VerifierError } from "../../util/errors.js";
import type { RestoreContext } from "../restorer.js";
import { archiveContent, archiveDataProblem } from "./archive-completeness.js";
import { restoreArchive } from "./archive-restore.js";
import { tocProblem } from "./archive-toc.js";

const ARCHIVE_FORMATS = new Set(["custom", "directory", "tar"]);

/**
 * Why a paired backup cannot be drilled, judged before anything runs: a pair that is not two
 * archives or not a schema-only and a data-only dump is a configuration mistake (`error`); a part
 * whose TOC or data is cut or edited is the backup's fault (`fail`). Undefined for an unpaired backup.
 */
export function pairPreflight(b: Backup): Error | undefined {
  const schema = pairedSchema(b);
  if (!schema) return undefined;
  const archives = [schema, b].filter((p) => ARCHIVE_FORMATS.has(p.format)).length;
  // two plain SQL files: each is scanned and restored by psql like any plain dump
  if (archives === 0) return undefined;
  if (archives === 1)
    return new VerifierError(
      `${b.id}: paired with ${schema.id}, but a pair is two archives (custom, directory, tar) or two plain SQL dumps, not ${schema.format} + ${b.format}`,
    );
  for (const part of [schema, b]) {
    const problem =
      tocProblem(part.location, part.format, part.id) ??
      archiveDataProblem(part.location, part.format, part.id);
    if (problem) return problem;
  }
  const [schemaContent, dataContent] = [
    archiveContent(schema.location, schema.format),
    archiveContent(b.location, b.format),
  ];
  if (schemaContent !== "schema-only" || dataContent !== "data-only")
    return new VerifierError(
      `${b.id}: the configured pair is not a --schema-only dump (${schema.id}: ${schemaContent ?? "unreadable TOC"}) and a --data-only dump (${b.id}: ${dataContent ?? "unreadable TOC"}); check \`pairs\``,
    );
  return undefined;
}

/** Restores `schema` and `data` into `db` as one backup; returns the notes for the drill record. */
export async function restorePair(
  sandbox: Sandbox,
  schema: Backup,
  data: Backup,
  db: string,
  ctx: RestoreContext,
  jobs: number,
): Promise<string[]> {
  const notes = [
    `restored as one backup: the schema-only dump ${schema.id}, then the data-only dump ${data.id}`,
  ];
  await restoreArchive(sandbox, schema, db, ctx, jobs, ["--section=pre-data"]);
  notes.push(await restoreArchive(sandbox, data, db, ctx, jobs));
  await restoreArchive(sandbox, schema, db, ctx, jobs, ["--section=post-data"]);
  return notes;
}
