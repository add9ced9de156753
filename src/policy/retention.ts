/**
 * Rule `retention`: at least `min_count` backups (Barman's REDUNDANCY), one old enough to cover
 * `min_days` (RECOVERY WINDOW OF n DAYS), and none older than `max_days` (data that must be gone).
 */
import type { Violation } from "../model.js";
import { formatDuration } from "../util/duration.js";
import { label, type SeriesInput, violation, when } from "./series-input.js";

const DAY = 86_400_000;

/** Evaluates `retention` for one series. */
export function retentionRule(s: SeriesInput): Violation[] {
  const r = s.policies.retention;
  if (!r) return [];
  const out: Violation[] = [];
  const name = label(s.source, s.series);
  const n = s.backups.length;

  if (r.min_count !== undefined && n < r.min_count) {
    out.push(
      violation(
        s,
        "retention",
        "warning",
        `${name} keeps ${n} backup${n === 1 ? "" : "s"}; the retention policy requires at least ${r.min_count} (min_count)`,
        { aspect: "min_count", count: n, minCount: r.min_count },
      ),
    );
  }

  const oldest = s.backups[0];
  if (r.min_days !== undefined && r.min_days > 0 && oldest) {
    const windowStart = s.now - r.min_days * DAY;
    if (oldest.at > windowStart) {
      out.push(
        violation(
          s,
          "retention",
          "warning",
          `the oldest backup of ${name} is ${formatDuration(s.now - oldest.at)} old (${oldest.backup.id}); a recovery window of ${r.min_days} days needs one taken on or before ${when(windowStart)} (min_days)`,
          {
            aspect: "min_days",
            oldestBackupId: oldest.backup.id,
            oldestCreatedAt: oldest.backup.createdAt,
            minDays: r.min_days,
          },
        ),
      );
    }
  }

  if (r.max_days !== undefined) {
    const expired = s.backups.filter((b) => b.at < s.now - r.max_days! * DAY);
    const first = expired[0];
    if (first) {
      const k = expired.length;
      out.push(
        violation(
          s,
          "retention",
          "critical",
          `${k} backup${k === 1 ? "" : "s"} of ${name} ${k === 1 ? "is" : "are"} older than ${r.max_days} days and should have been deleted (oldest: ${first.backup.id}, ${formatDuration(s.now - first.at)} old) (max_days)`,
          {
            aspect: "max_days",
            count: k,
            maxDays: r.max_days,
            backupIds: expired.slice(0, 20).map((b) => b.backup.id),
          },
          first.at + r.max_days * DAY,
        ),
      );
    }
  }
  return out;
}
