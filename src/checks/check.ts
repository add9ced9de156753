/** The Check stage: each check inspects a restored sandbox and returns a result record. */
import type { ChecksConfig } from "../config/schema.js";
import type { CheckResult, DrillPlan, Inventory } from "../model.js";
import type { RestoreOutcome } from "../restore/restorer.js";
import type { Sandbox } from "../runtimes/runtime.js";
import type { Logger } from "../util/log.js";

/** What a check may look at. */
export interface CheckContext {
  sandbox: Sandbox;
  plan: DrillPlan;
  restored: RestoreOutcome;
  config: ChecksConfig;
  /** Inventory of the previous passing drill of the same source and series. */
  previousInventory?: Inventory;
  /** Results shared between checks of one drill (the inventory check fills `inventory`). */
  shared: { inventory?: Inventory; newestData?: string; rowCounts?: Map<string, Map<string, number>> };
  /** When the drill started, for the measured RPO. */
  drillStartedAt: Date;
  logger: Logger;
  signal?: AbortSignal;
  timeoutMs: number;
  /** Called before each check by name (the drill's test-only stop points). */
  beforeCheck?: (name: string) => Promise<void>;
}

/** One integrity check. Never throws for a finding: a failed check is a record. */
export interface Check {
  readonly name: string;
  /** Whether this check applies under this config and backup. */
  enabled(ctx: CheckContext): boolean;
  run(ctx: CheckContext): Promise<CheckResult>;
}
