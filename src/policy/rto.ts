/**
 * Rule `rto`: the latest drill's total time must stay within the target; and a forecast warns
 * before the restore-time trend crosses it ("RTO exceeds 30m in about 40 days").
 */
import type { Violation } from "../model.js";
import { formatDuration } from "../util/duration.js";
import {
  type DrillRecord,
  iso,
  isPassing,
  label,
  type SeriesInput,
  violation,
  when,
} from "./series-input.js";
import { fitLine, valueAt } from "./trend.js";

const DAY = 86_400_000;
const DEFAULT_HORIZON = 90 * DAY;
const DEFAULT_MIN_POINTS = 4;

/** Evaluates `rto` for one series. */
export function rtoRule(s: SeriesInput): Violation[] {
  const rto = s.policies.rto;
  if (rto === undefined) return [];
  const timed = s.drills.filter(
    (d) => isPassing(d.verdict) && d.totalMs !== undefined && Number.isFinite(d.at),
  );
  const last = timed.at(-1);
  if (!last) return [];
  const name = label(s.source, s.series);
  if (last.totalMs! > rto) {
    const overInRun = timed.filter((d) => d.current && d.totalMs! > rto).length;
    return [
      violation(
        s,
        "rto",
        "critical",
        `restore drill of ${name} (${last.backupId}) took ${formatDuration(last.totalMs!)}; the RTO target is ${formatDuration(rto)}`,
        {
          aspect: "drill",
          backupId: last.backupId,
          totalMs: last.totalMs,
          targetMs: rto,
          drillAt: iso(last.at),
          overInRun,
        },
        last.at,
      ),
    ];
  }
  const forecast = forecastViolation(s, timed, rto);
  return forecast ? [forecast] : [];
}

interface Crossing {
  crossAt: number;
  model: "size" | "time";
  nowMs: number;
  slopePerDayMs: number;
  r2: number;
  points: number;
}

function forecastViolation(s: SeriesInput, timed: DrillRecord[], rto: number): Violation | undefined {
  const cfg = s.policies.rto_forecast;
  if (cfg && !cfg.enabled) return undefined;
  const horizon = cfg?.horizon ?? DEFAULT_HORIZON;
  const minPoints = cfg?.min_points ?? DEFAULT_MIN_POINTS;
  if (timed.length < minPoints) return undefined;
  const bySize = crossingBySize(s, timed, rto, minPoints);
  // when sizes explain restore time, their verdict stands (a shrinking database is no risk)
  const c = bySize === "none" ? undefined : (bySize ?? crossingByTime(s, timed, rto));
  if (!c || c.crossAt > s.now + horizon) return undefined;
  const days = Math.max(0, Math.round((c.crossAt - s.now) / DAY));
  const name = label(s.source, s.series);
  const basis =
    c.model === "size" ? "restore time against backup size, and backup growth" : "restore time over time";
  const message =
    days === 0
      ? `the restore time of ${name} is on course to exceed the RTO target of ${formatDuration(rto)} now (trend of ${c.points} drills, ${basis})`
      : `at the current growth RTO of ${name} exceeds ${formatDuration(rto)} in about ${days} day${days === 1 ? "" : "s"} (around ${when(c.crossAt).slice(0, 10)}; trend of ${c.points} drills, ${basis}; now about ${formatDuration(c.nowMs)}, +${formatDuration(c.slopePerDayMs)}/day)`;
  return violation(s, "rto", "warning", message, {
    aspect: "forecast",
    model: c.model,
    crossAt: iso(c.crossAt),
    days,
    targetMs: rto,
    predictedNowMs: Math.round(c.nowMs),
    slopeMsPerDay: Math.round(c.slopePerDayMs),
    r2: Number(c.r2.toFixed(3)),
    points: c.points,
  });
}

/**
 * Restore time as a function of size, and size as a function of time (from every backup).
 * Undefined when sizes cannot explain restore time; "none" when they do and nothing crosses.
 */
function crossingBySize(
  s: SeriesInput,
  timed: DrillRecord[],
  rto: number,
  minPoints: number,
): Crossing | "none" | undefined {
  const sized = timed.filter((d) => d.sizeBytes !== undefined && d.sizeBytes > 0);
  if (sized.length < minPoints || s.backups.length < minPoints) return undefined;
  const bySize = fitLine(sized.map((d) => ({ x: d.sizeBytes!, y: d.totalMs! })));
  if (!bySize || bySize.slope <= 0) return undefined;
  const growth = fitLine(
    s.backups.filter((b) => b.backup.sizeBytes > 0).map((b) => ({ x: b.at, y: b.backup.sizeBytes })),
  );
  if (!growth || growth.slope <= 0) return "none";
  const sizeAtTarget = (rto - bySize.intercept) / bySize.slope;
  const crossAt = (sizeAtTarget - growth.intercept) / growth.slope;
  if (!Number.isFinite(crossAt)) return undefined;
  return {
    crossAt: Math.max(crossAt, s.now),
    model: "size",
    nowMs: valueAt(bySize, valueAt(growth, s.now)),
    slopePerDayMs: bySize.slope * growth.slope * DAY,
    r2: bySize.r2,
    points: sized.length,
  };
}

/** Restore time as a function of the drill's time. */
function crossingByTime(s: SeriesInput, timed: DrillRecord[], rto: number): Crossing | undefined {
  const f = fitLine(timed.map((d) => ({ x: d.at, y: d.totalMs! })));
  if (!f || f.slope <= 0) return undefined;
  const crossAt = (rto - f.intercept) / f.slope;
  if (!Number.isFinite(crossAt)) return undefined;
  return {
    crossAt: Math.max(crossAt, s.now),
    model: "time",
    nowMs: valueAt(f, s.now),
    slopePerDayMs: f.slope * DAY,
    r2: f.r2,
    points: timed.length,
  };
}
