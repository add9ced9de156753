/** The checks of a drill, in order. The only place that knows every check. */
import type { CheckResult } from "../model.js";
import { describeError } from "../util/errors.js";
import { amcheckCheck } from "./amcheck.js";
import { runAssertions } from "./assertions.js";
import type { Check, CheckContext } from "./check.js";
import { checksumFailuresCheck, pgChecksumsCheck } from "./checksums.js";
import { disableEventTriggers } from "./event-triggers.js";
import { freshnessCheck } from "./freshness.js";
import { fullReadCheck } from "./full-read.js";
import { result, runCheck } from "./helpers.js";
import { inventoryCheck } from "./inventory.js";
import { runObjectChecks } from "./objects.js";
import { serverUpCheck } from "./server-up.js";
import { writeProbeCheck } from "./write-probe.js";

/** Checks that run before user assertions (inventory before amcheck installs its extension). */
export const CHECKS_BEFORE: readonly Check[] = [
  serverUpCheck,
  fullReadCheck,
  inventoryCheck,
  amcheckCheck,
  // after the reads above, so every page has passed the checksum verification once
  checksumFailuresCheck,
  freshnessCheck,
];
/** Checks that run last: the write probe changes the copy; pg_checksums stops and restarts it. */
export const CHECKS_AFTER: readonly Check[] = [writeProbeCheck, pgChecksumsCheck];

/** Runs every enabled check; a failing server_up stops the rest (recorded as skipped). */
export async function runChecks(ctx: CheckContext): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  // the object checks read the copy before the write probe changes it
  const all = [...CHECKS_BEFORE, "assertions" as const, "objects" as const, ...CHECKS_AFTER];
  for (const check of all) {
    const name = typeof check === "string" ? check : check.name;
    if (check === "objects" && !ctx.config.objects?.length) continue;
    await ctx.beforeCheck?.(name);
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    if (out.some((r) => r.name === "server_up" && r.status !== "pass")) {
      out.push(result(name, "skip", "not run: the server is not usable"));
      continue;
    }
    if (check === "assertions") {
      out.push(...(await runAssertions(ctx)));
      continue;
    }
    if (check === "objects") {
      out.push(...(await runObjectChecks(ctx)));
      continue;
    }
    if (!check.enabled(ctx)) continue;
    ctx.logger.debug("check", { check: check.name });
    out.push(await runCheck(check, ctx));
    // once the server is known usable, before any check runs DDL (amcheck's extension, the write
    // probe): the backup's event triggers must not see Attest's statements
    if (check === serverUpCheck && out.at(-1)?.status === "pass") {
      const quiet = await disableEventTriggers(ctx).catch((err: unknown) =>
        result(
          "event_triggers",
          "error",
          `could not disable the backup's event triggers: ${describeError(err)}`,
        ),
      );
      if (quiet) out.push(quiet);
    }
  }
  return out;
}
