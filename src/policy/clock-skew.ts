/** Rule `clock_skew`: a backup dated in the future means a wrong clock, so its age cannot be judged. */
import type { Violation } from "../model.js";
import { formatDuration } from "../util/duration.js";
import { label, type SeriesInput, violation, when } from "./series-input.js";

/** Evaluates `clock_skew` for one series. */
export function clockSkewRule(s: SeriesInput): Violation[] {
  if (s.futureBackups.length === 0) return [];
  const far = s.futureBackups.at(-1)!;
  const ahead = far.at - s.now;
  const n = s.futureBackups.length;
  const one = n === 1;
  return [
    violation(
      s,
      "clock_skew",
      "warning",
      `${one ? "1 backup" : `${n} backups`} of ${label(s.source, s.series)} ${one ? "is" : "are"} dated in the future (${far.backup.id}: ${when(far.at)}, ${formatDuration(ahead)} ahead); the clock of the backup host or of Attest is wrong, and ${one ? "its" : "their"} age is ignored`,
      {
        aspect: "future",
        backupIds: s.futureBackups.slice(-10).map((t) => t.backup.id),
        aheadSeconds: Math.round(ahead / 1000),
      },
    ),
  ];
}
