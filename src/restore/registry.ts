/** Chooses the Restorer for a backup. The only place that knows every restorer. */
import type { SourceConfig } from "../config/schema.js";
import type { Backup } from "../model.js";
import { VerifierError } from "../util/errors.js";
import { LogicalRestorer } from "./logical/logical-restorer.js";
import type { Restorer } from "./restorer.js";

/** Returns the restorer for `backup` of `source`, or throws when none fits. */
export function restorerFor(backup: Backup, source: SourceConfig): Restorer {
  if (backup.family === "logical" && source.type === "dump-dir") {
    return new LogicalRestorer({ jobs: source.jobs, globals: source.globals });
  }
  throw new VerifierError(`no restorer for ${backup.family} backups of source type ${source.type}`);
}
