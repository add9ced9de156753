/** How a drill's verdict reads to alerts, monitoring and reports: an abort by a signal or shutdown proves nothing. */
import type { DrillResult } from "../model.js";

/** Reason codes of a stop by signal or shutdown (a timeout of Attest's own is not one: it alerts). */
const ABORT_CODE = /abort|interrupt|shutdown|signal/i;

/**
 * Whether a drill ended because Attest was stopped (SIGINT, SIGTERM, shutdown), not because the
 * backup or the verifier failed. Reads an explicit reason code when the drill carries one, and
 * the reason text otherwise ("drill aborted during restore: received SIGTERM").
 */
export function isAbortedDrill(d: Pick<DrillResult, "verdict" | "reason">): boolean {
  if (d.verdict !== "error") return false;
  // the drill's closed reason code, under the name it carries (src/audit/drill-outcome.ts: `outcome`)
  const tagged = d as { outcome?: unknown; reasonCode?: unknown };
  const code = tagged.outcome ?? tagged.reasonCode;
  if (typeof code === "string") return ABORT_CODE.test(code) && !/time/i.test(code);
  return /^(drill )?aborted during /.test(d.reason) || d.reason.startsWith("drill aborted");
}

/** Words for a verdict in alert subjects and lines. */
export function verdictWords(verdict: string): string {
  if (verdict === "fail") return "backup failed (FAIL)";
  if (verdict === "error") return "could not verify (ERROR)";
  return verdict.toUpperCase();
}
