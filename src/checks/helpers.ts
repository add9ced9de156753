/** Small helpers shared by checks. */
import type { CheckResult, CheckStatus } from "../model.js";
import { describeError } from "../util/errors.js";
import type { Check, CheckContext } from "./check.js";

/** Builds a check result. */
export function result(name: string, status: CheckStatus, detail: string, evidence?: unknown): CheckResult {
  return evidence === undefined ? { name, status, detail } : { name, status, detail, evidence };
}

/**
 * Runs a check and times it; an exception inside a check means Attest could not perform it,
 * which is `error`, never `pass`.
 */
export async function runCheck(check: Check, ctx: CheckContext): Promise<CheckResult> {
  const t0 = Date.now();
  let r: CheckResult;
  try {
    r = await check.run(ctx);
  } catch (err) {
    r = result(check.name, "error", `could not run: ${describeError(err)}`);
  }
  return { ...r, durationMs: Date.now() - t0 };
}

/** Non-template databases the restore produced, as the checks should see them. */
export function restoredDatabases(ctx: CheckContext): string[] {
  return ctx.restored.databases;
}
