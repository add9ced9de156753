/**
 * Rule `verify_every`: every series needs a passing restore drill within the period (coverage).
 * Never verified is critical once the series has existed for a whole period, a warning before.
 */
import type { Violation } from "../model.js";
import { formatDuration } from "../util/duration.js";
import { iso, isPassing, label, type SeriesInput, violation, when } from "./series-input.js";

/** Evaluates `verify_every` for one series. */
export function verifyEveryRule(s: SeriesInput): Violation[] {
  const every = s.policies.verify_every;
  if (every === undefined || s.backups.length === 0) return [];
  const name = label(s.source, s.series);
  const lastPass = s.drills.filter((d) => isPassing(d.verdict) && Number.isFinite(d.at)).at(-1);
  if (!lastPass) {
    const due = s.backups[0]!.at + every;
    const lastDrill = s.drills.filter((d) => !d.aborted).at(-1);
    // once the oldest backup had a whole period to be verified, the missing proof is critical
    const overdue = due < s.now;
    const tried = lastDrill ? ` (last drill: ${lastDrill.verdict} on ${when(lastDrill.at)})` : "";
    return [
      violation(
        s,
        "verify_every",
        overdue ? "critical" : "warning",
        `${name} has never been verified by a passing restore drill${tried}; the policy asks for one every ${formatDuration(every)}`,
        {
          aspect: "coverage",
          lastPassAt: null,
          everySeconds: every / 1000,
          lastVerdict: lastDrill?.verdict ?? null,
        },
        overdue ? due : undefined,
      ),
    ];
  }
  const age = s.now - lastPass.at;
  if (age <= every) return [];
  return [
    violation(
      s,
      "verify_every",
      "warning",
      `no passing restore drill of ${name} for ${formatDuration(age)} (last: ${lastPass.backupId} on ${when(lastPass.at)}); the policy asks for one every ${formatDuration(every)}`,
      {
        aspect: "coverage",
        lastPassAt: iso(lastPass.at),
        backupId: lastPass.backupId,
        everySeconds: every / 1000,
      },
      lastPass.at + every,
    ),
  ];
}
