/** After a run: write reports, send mail and alerts. Failures are records, never exceptions. */
import type { Config } from "../config/schema.js";
import type { RunResult } from "../model.js";
import type { Logger } from "../util/log.js";

/** What delivery needs. */
export interface DeliverContext {
  config: Config;
  logger: Logger;
  /** Head hash of the history chain after this run's rows were appended. */
  historyHead: string;
  /** `--no-mail` */
  mail: boolean;
}

/** Writes the PDF report, e-mails it and sends alerts; returns what happened per channel. */
export async function deliver(run: RunResult, ctx: DeliverContext): Promise<NonNullable<RunResult["delivery"]>> {
  void run;
  void ctx;
  return [];
}
