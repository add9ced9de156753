/**
 * Rule `last_drill`: the newest drill of a series decides whether its newest evidence holds.
 * `fail` is critical (the last backup tried cannot be restored, whatever older drills proved),
 * `error` a warning (Attest could not verify). Drills aborted by a signal are passed over.
 */
import type { Violation } from "../model.js";
import { label, type SeriesInput, violation, when } from "./series-input.js";

/** Evaluates `last_drill` for one series. */
export function lastDrillRule(s: SeriesInput): Violation[] {
  const last = s.drills.filter((d) => !d.aborted && Number.isFinite(d.at)).at(-1);
  // a drill of the current run is reported as a drill result of its own, not a second time here
  if (!last || last.current || (last.verdict !== "fail" && last.verdict !== "error")) return [];
  const name = label(s.source, s.series);
  const failed = last.verdict === "fail";
  return [
    violation(
      s,
      "last_drill",
      failed ? "critical" : "warning",
      failed
        ? `the newest restore drill of ${name} FAILED (${last.backupId}, ${when(last.at)}): that backup cannot be restored`
        : `the newest restore drill of ${name} could not verify (ERROR) ${last.backupId} (${when(last.at)})`,
      { aspect: last.verdict, backupId: last.backupId, drilledAt: new Date(last.at).toISOString() },
      last.at,
    ),
  ];
}
