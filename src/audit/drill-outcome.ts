/**
 * How a drill ended, as a closed reason code, and the verdict that follows from it. The
 * verdict never depends on which exception happened to arrive first: an interrupted drill
 * is `error` whichever process noticed the interruption.
 */
import type { CheckResult, Verdict } from "../model.js";
import { formatDuration } from "../util/duration.js";
import { BackupDefectError, describeError } from "../util/errors.js";
import { ProcessError } from "../util/process.js";

/** The named steps of a drill, in order. */
export const DRILL_PHASES = ["preflight", "prepare", "provision", "restore", "checks", "teardown"] as const;
/** One step of a drill. */
export type DrillPhase = (typeof DRILL_PHASES)[number];

/** Why a drill ended as it did. */
export const DRILL_OUTCOMES = [
  "verified",
  "verified-with-warnings",
  "check-failed",
  "check-not-performed",
  "no-checks",
  "backup-defect",
  "aborted",
  "timed-out",
  "disk-full",
  "verifier-failed",
  "teardown-failed",
] as const;
/** A reason code of a drill's end. */
export type DrillOutcome = (typeof DRILL_OUTCOMES)[number];

/** The verdict of each reason code: only the backup's own defects are `fail`. */
export const VERDICT_OF_OUTCOME = {
  verified: "pass",
  "verified-with-warnings": "warn",
  "check-failed": "fail",
  "check-not-performed": "error",
  "no-checks": "error",
  "backup-defect": "fail",
  aborted: "error",
  "timed-out": "error",
  "disk-full": "error",
  "verifier-failed": "error",
  "teardown-failed": "error",
} as const satisfies Record<DrillOutcome, Verdict>;

/** A reason code with its human sentence. */
export interface DrillEnd {
  outcome: DrillOutcome;
  reason: string;
}

/** What stopped a drill from outside: the caller's signal (shutdown, Ctrl-C) or Attest's own deadline. */
export type DrillStop = { kind: "aborted"; why: string } | { kind: "timed-out"; afterMs: number };

/** The verdict of an end. */
export function verdictOf(end: DrillEnd): Verdict {
  return VERDICT_OF_OUTCOME[end.outcome];
}

/** Whether an error message says the sandbox's disk is full (the verifier's problem, not the backup's). */
export function diskFull(message: string): boolean {
  return /No space left on device|could not extend file|disk full/i.test(message);
}

/** The sentence of a stop, naming the phase it interrupted. */
export function stoppedEnd(stop: DrillStop, phase: DrillPhase): DrillEnd {
  return stop.kind === "aborted"
    ? { outcome: "aborted", reason: `drill aborted during ${phase}: ${stop.why}` }
    : {
        outcome: "timed-out",
        reason: `drill timed out after ${formatDuration(stop.afterMs)} during ${phase}`,
      };
}

/**
 * The end of a drill whose step threw. Once the drill was stopped, any failure is the stop's
 * consequence ("psql stopped: received SIGTERM" is not a defect of the dump).
 */
export function classifyDrillFailure(err: unknown, phase: DrillPhase, stop: DrillStop | undefined): DrillEnd {
  if (stop) return stoppedEnd(stop, phase);
  const message = describeError(err);
  // a tool killed by a signal (a terminal's Ctrl-C reaches it before Attest, the OOM killer)
  // says nothing about the backup
  if (killedBySignal(err)) return { outcome: "verifier-failed", reason: `${phase}: ${message}` };
  if (err instanceof BackupDefectError) return { outcome: "backup-defect", reason: err.message };
  if (diskFull(message))
    return { outcome: "disk-full", reason: `sandbox ran out of disk space during ${phase}: ${message}` };
  return { outcome: "verifier-failed", reason: `${phase}: ${message}` };
}

/** Signals that stop a program from outside (a crash such as SIGSEGV is not one of them). */
const STOP_SIGNALS: readonly string[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGKILL"];

/** Whether an error, or one of its causes, is a program that a stop signal ended. */
export function killedBySignal(err: unknown): boolean {
  let cur: unknown = err;
  for (let depth = 0; cur instanceof Error && depth < 6; depth++) {
    if (cur instanceof ProcessError && STOP_SIGNALS.includes(cur.result?.signal ?? "")) return true;
    // Attest's own words for a stop it passed on; not pg_restore's "terminated by user", which a
    // parallel restore also prints when it ends its workers after one failed (a cut archive)
    if (/received SIG(INT|TERM|HUP|KILL)\b/.test(cur.message)) return true;
    cur = cur.cause;
  }
  return false;
}

/** The end the checks add up to: any fail → fail; any error → error; any warn → warn. */
export function endOfChecks(checks: readonly CheckResult[]): DrillEnd {
  const first = (s: string) => checks.find((c) => c.status === s);
  const failed = first("fail");
  if (failed) return { outcome: "check-failed", reason: `${failed.name}: ${failed.detail}` };
  const errored = first("error");
  if (errored)
    return {
      outcome: "check-not-performed",
      reason: `${errored.name} could not be performed: ${errored.detail}`,
    };
  const warned = first("warn");
  if (warned) return { outcome: "verified-with-warnings", reason: `${warned.name}: ${warned.detail}` };
  const passed = checks.filter((c) => c.status === "pass").length;
  if (passed === 0) return { outcome: "no-checks", reason: "no check was performed" };
  return { outcome: "verified", reason: `restored; ${passed} check(s) passed` };
}

/** The verdict the checks add up to (see endOfChecks). */
export function verdictOfChecks(checks: readonly CheckResult[]): { verdict: Verdict; reason: string } {
  const end = endOfChecks(checks);
  return { verdict: verdictOf(end), reason: end.reason };
}
