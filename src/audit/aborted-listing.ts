/**
 * A run stopped (signal, shutdown) while its sources were being listed. What was listed by
 * then is a fragment: an empty or short inventory says nothing about the backups, so no
 * policy is evaluated and nothing is alerted; the run ends `error`, naming the phase.
 */
import type { SourceConfig } from "../config/schema.js";
import type { RunKind, RunResult } from "../model.js";
import { describeError } from "../util/errors.js";

/** The finding kind of a source whose listing an abort cut short. */
export const LIST_ABORTED = "list_aborted";

/** The document of a run aborted during listing: `error`, no drills, no violations. */
export function abortedListingRun(run: {
  id: string;
  kind: RunKind;
  startedAt: Date;
  finishedAt: Date;
  label?: string;
  reason: unknown;
  sources: readonly SourceConfig[];
}): RunResult {
  const message = `aborted during listing: ${describeError(run.reason)}`;
  return {
    run: {
      id: run.id,
      kind: run.kind,
      startedAt: run.startedAt.toISOString(),
      finishedAt: run.finishedAt.toISOString(),
      ...(run.label ? { label: run.label } : {}),
    },
    status: "error",
    drills: [],
    violations: [],
    findings: run.sources.map((s) => ({ source: s.name, kind: LIST_ABORTED, severity: "warning", message })),
  };
}
