/**
 * Point-in-time drill plans: `latest` replays the newest base backup to the end of the
 * archive; `all` replays every base backup through the archive to the next one's start (the
 * newest to the archive's end); `random:N@WINDOW` picks N target times inside the recovery
 * window, each restored from the newest base backup consistent before it.
 */
import type { Backup, DrillPlan } from "../../model.js";
import { parseDuration } from "../../util/duration.js";
import type { HistoryEntry } from "../../wal/timeline-history.js";
import { parseLsn } from "../../wal/wal-names.js";

/** STOP TIME is printed in whole seconds: a backup counts as consistent one second after it. */
const STOP_TIME_RESOLUTION_MS = 1000;

/** The recovery window of one series: from the oldest backup's consistency to the archive's last transaction. */
export interface RecoveryWindow {
  from: number;
  to: number;
}

function byCreated(a: Backup, b: Backup): number {
  return a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id);
}

/** Backups a physical drill can start from: base backups that were read without problems. */
function restorable(backups: readonly Backup[]): Map<string, Backup[]> {
  const bySeries = new Map<string, Backup[]>();
  for (const b of backups) {
    if (b.family !== "physical" || b.problem) continue;
    const list = bySeries.get(b.series) ?? [];
    list.push(b);
    bySeries.set(b.series, list);
  }
  for (const list of bySeries.values()) list.sort(byCreated);
  return bySeries;
}

/** The window in which any time can be recovered to, if the archive has no gap. */
export function recoveryWindow(series: readonly Backup[]): RecoveryWindow | undefined {
  const oldest = series[0];
  const newest = series[series.length - 1];
  if (!oldest || !newest) return undefined;
  const from = Date.parse(oldest.createdAt) + STOP_TIME_RESOLUTION_MS;
  const end = newest.walArchive?.end?.time ?? oldest.walArchive?.end?.time;
  const to = end ? Date.parse(end) : Date.parse(newest.createdAt);
  return to >= from ? { from, to } : undefined;
}

/** The newest backup consistent before `time` (ms). */
export function backupBefore(series: readonly Backup[], time: number): Backup | undefined {
  let found: Backup | undefined;
  for (const b of series) if (Date.parse(b.createdAt) + STOP_TIME_RESOLUTION_MS <= time) found = b;
  return found;
}

/** What the planner knows about the archive beyond the backups. */
export interface PlanContext {
  /** Parsed history file of each timeline the archive holds one for. */
  histories?: ReadonlyMap<number, readonly HistoryEntry[]>;
}

/** Plans drills for `rule`; undefined when the rule has no physical meaning (generic selection applies). */
export function planPhysical(
  rule: string,
  backups: readonly Backup[],
  now: Date,
  random: () => number = Math.random,
  context: PlanContext = {},
): DrillPlan[] | undefined {
  const series = restorable(backups);
  if (rule === "all") return planAll(backups, series, context);
  if (rule === "latest") {
    const plans: DrillPlan[] = [];
    for (const list of series.values()) {
      const newest = list[list.length - 1]!;
      plans.push({
        backup: newest,
        target: newest.walArchive ? { kind: "latest" } : { kind: "immediate" },
        reason: "latest",
      });
    }
    return plans;
  }
  const m = /^random:(\d+)@(\d+[smhdw])(\+oldest)?$/.exec(rule);
  if (!m) return undefined;
  const count = Number(m[1]);
  const windowMs = parseDuration(m[2]!)!;
  const plans: DrillPlan[] = [];
  for (const list of series.values()) {
    if (!list[0]!.walArchive) return undefined;
    const whole = recoveryWindow(list);
    if (whole) {
      const from = Math.max(whole.from, now.getTime() - windowMs);
      const to = Math.min(whole.to, now.getTime());
      if (to >= from) {
        const picked: DrillPlan[] = [];
        for (let i = 0; i < count; i++) {
          const t = Math.floor(from + random() * (to - from));
          const backup = backupBefore(list, t);
          if (!backup) continue;
          const time = new Date(t).toISOString();
          picked.push({ backup, target: { kind: "time", time }, reason: `${rule}: target ${time}` });
        }
        picked.sort((a, b) =>
          a.target?.kind === "time" && b.target?.kind === "time"
            ? a.target.time.localeCompare(b.target.time)
            : 0,
        );
        plans.push(...picked);
      }
    }
    // +oldest: the oldest backup of the window restored to its own end (the window's far edge works)
    const oldest = list.find((b) => Date.parse(b.createdAt) >= now.getTime() - windowMs);
    if (m[3] && oldest)
      plans.push({ backup: oldest, target: { kind: "immediate" }, reason: `${rule}: oldest backup` });
  }
  return plans;
}

/**
 * `all`: each base backup is replayed through the archive up to the start of the next backup of
 * its series (on that backup's timeline), the newest to the end of the archive, so the WAL
 * between backups is proven too. Backups that cannot start a replay keep a plain plan (they
 * fail or restore on their own).
 */
function planAll(
  backups: readonly Backup[],
  series: Map<string, Backup[]>,
  context: PlanContext,
): DrillPlan[] {
  const chained = new Map<Backup, DrillPlan>();
  for (const list of series.values()) {
    list.forEach((backup, i) => {
      if (!backup.walArchive) {
        chained.set(backup, { backup, target: { kind: "immediate" }, reason: "all" });
        return;
      }
      const next = nextStart(backup, list.slice(i + 1), context);
      chained.set(
        backup,
        next?.walRange
          ? {
              backup,
              target: {
                kind: "lsn",
                lsn: next.walRange.startLsn,
                timeline: next.walRange.timeline,
                nextBackup: next.id,
              },
              reason: `all: through the archive to the start of ${next.id}`,
            }
          : { backup, target: { kind: "latest" }, reason: "all: through the archive to its end" },
      );
    });
  }
  return [...backups].sort(byCreated).map((backup) => chained.get(backup) ?? { backup, reason: "all" });
}

/**
 * The first later backup whose start lies after `backup`'s end (overlapping backups are
 * skipped) on a timeline that descends from `backup`'s (a sibling branch is no successor).
 */
function nextStart(backup: Backup, later: readonly Backup[], context: PlanContext): Backup | undefined {
  const range = backup.walRange;
  const end = range?.stopLsn ?? range?.startLsn;
  if (!range || !end) return undefined;
  const from = parseLsn(end);
  return later.find(
    (b) =>
      b.walRange &&
      parseLsn(b.walRange.startLsn) > from &&
      descends(range.timeline, from, b.walRange.timeline, context.histories),
  );
}

/**
 * Whether timeline `to` passes through timeline `from` at or after `fromLsn`. Without the
 * history file of `to` the answer is left to recovery, which fails saying the file is missing.
 */
export function descends(
  from: number,
  fromLsn: bigint,
  to: number,
  histories: PlanContext["histories"],
): boolean {
  if (from === to) return true;
  // an ancestor always has a smaller id than its descendants (timeline 1 has none)
  if (to < from) return false;
  const history = histories?.get(to);
  if (!history) return true;
  const entry = history.find((h) => h.tli === from);
  return entry !== undefined && entry.switchpoint >= fromLsn;
}
