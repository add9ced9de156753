/** The Source stage: one adapter per backup family lists what exists, statically. */
import type { Backup, DrillPlan, Finding } from "../model.js";
import type { Logger } from "../util/log.js";

/** What every source adapter receives. */
export interface SourceContext {
  logger: Logger;
  signal?: AbortSignal;
}

/** A configured source of backups. */
export interface Source {
  readonly name: string;
  readonly type: string;
  /** Lists the backups that exist now, newest last. */
  list(ctx: SourceContext): Promise<Backup[]>;
  /** Static findings about the inventory (WAL continuity, catalog status); optional. */
  inspect?(backups: readonly Backup[], ctx: SourceContext): Promise<Finding[]>;
  /**
   * Turns one selection rule into drill plans when the source has its own meaning for it
   * (PITR sampling: `random:N@7d` picks target times); undefined = use the generic selection.
   */
  plan?(rule: string, backups: readonly Backup[], now: Date): DrillPlan[] | undefined;
}
