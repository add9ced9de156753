/** Rule `max_gap`: consecutive backups of a series must not be further apart than the limit. */
import type { Violation } from "../model.js";
import { formatDuration } from "../util/duration.js";
import { label, type SeriesInput, violation, when } from "./series-input.js";

/** Evaluates `max_gap` for one series: gaps between backups, and the open gap since the newest. */
export function maxGapRule(s: SeriesInput): Violation[] {
  const limit = s.policies.max_gap;
  const newest = s.backups.at(-1);
  if (limit === undefined || !newest) return [];
  const out: Violation[] = [];
  const name = label(s.source, s.series);
  const gaps: Array<{ from: string; to: string; fromAt: number; toAt: number; ms: number }> = [];
  for (let i = 1; i < s.backups.length; i++) {
    const a = s.backups[i - 1]!;
    const b = s.backups[i]!;
    if (b.at - a.at > limit)
      gaps.push({ from: a.backup.id, to: b.backup.id, fromAt: a.at, toAt: b.at, ms: b.at - a.at });
  }
  if (gaps.length > 0) {
    const longest = gaps.reduce((x, g) => (g.ms > x.ms ? g : x));
    const k = gaps.length;
    out.push(
      violation(
        s,
        "max_gap",
        "warning",
        `${k} gap${k === 1 ? "" : "s"} longer than ${formatDuration(limit)} between backups of ${name}; the longest is ${formatDuration(longest.ms)} (${when(longest.fromAt)} to ${when(longest.toAt)})`,
        {
          aspect: "between",
          count: k,
          limitSeconds: limit / 1000,
          gaps: gaps.slice(-10).map((g) => ({ from: g.from, to: g.to, seconds: Math.round(g.ms / 1000) })),
        },
        gaps.at(-1)!.fromAt + limit,
      ),
    );
  }
  const open = s.now - newest.at;
  if (open > limit) {
    out.push(
      violation(
        s,
        "max_gap",
        "warning",
        `no backup of ${name} for ${formatDuration(open)} since ${newest.backup.id} (${when(newest.at)}); the longest allowed gap is ${formatDuration(limit)}`,
        {
          aspect: "open",
          backupId: newest.backup.id,
          seconds: Math.round(open / 1000),
          limitSeconds: limit / 1000,
        },
        newest.at + limit,
      ),
    );
  }
  return out;
}
