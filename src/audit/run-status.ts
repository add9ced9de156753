/** A run's overall status and the CLI exit code it maps to. */
import type { DrillResult, Verdict, Violation } from "../model.js";

/** fail beats error beats warn beats pass; a critical violation is a fail. */
export function runStatus(drills: readonly DrillResult[], violations: readonly Violation[]): Verdict {
  if (drills.some((d) => d.verdict === "fail") || violations.some((v) => v.severity === "critical"))
    return "fail";
  if (drills.some((d) => d.verdict === "error")) return "error";
  if (drills.some((d) => d.verdict === "warn") || violations.length > 0) return "warn";
  return "pass";
}

/** Exit codes of audit, drill and check. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unverified: 3 } as const;

/** 0 verified / 1 a backup failed or critical violation / 3 could not verify. */
export function exitCodeOf(status: Verdict): number {
  if (status === "fail") return EXIT.failed;
  if (status === "error") return EXIT.unverified;
  return EXIT.ok;
}

/** A run id: UTC time plus randomness, safe in file names, labels and tags. */
export function makeRunId(now = new Date()): string {
  const t = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${t}-${Math.random().toString(36).slice(2, 6)}`.toLowerCase();
}
