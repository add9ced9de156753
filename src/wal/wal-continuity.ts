/**
 * Static WAL continuity: for every timeline, are all segments there from the oldest base
 * backup that leads to it up to its newest segment, and has every backup the WAL it needs?
 * Works on names (a WalIndex) and parsed history files only.
 */
import { type HistoryEntry, providerOf, type TimelineSpan, timelineSpans } from "./timeline-history.js";
import { lowerBound, newestSegment, type WalIndex } from "./wal-index.js";
import { segmentName } from "./wal-names.js";

/** What a base backup needs from the archive. */
export interface BackupWalNeed {
  id: string;
  /** Timeline the backup started on. */
  tli: number;
  startSeg: number;
  /** Segment of the stop position, when known. */
  stopSeg?: number;
  /** ISO time the backup is consistent as of. */
  consistentAt?: string;
  /** The backup carries its own WAL (pg_wal in it): the archive is not needed to restore it. */
  walIncluded?: boolean;
}

/** A run of missing segments. */
export interface WalGap {
  /** Timeline whose segments are missing. */
  tli: number;
  fromSeg: number;
  toSeg: number;
  count: number;
  first: string;
  last: string;
  /** Target timelines whose recovery path crosses the gap. */
  timelines: number[];
  /** The present segment just before the gap (on the providing timeline). */
  before?: string;
  beforeSeg?: number;
  /** The present segment just after it. */
  after?: string;
  /** Base backups that lie before the gap and so cannot be rolled forward past it. */
  strandedBackups: string[];
  /** The first backup that starts after the gap, from whose consistency point PITR works again. */
  resumesWith?: { id: string; consistentAt?: string };
}

/** What was found for one target timeline. */
export interface TimelineReport {
  tli: number;
  /** Parsed history; undefined for timeline 1 and when the history file is missing. */
  history?: HistoryEntry[];
  historyMissing: boolean;
  spans: TimelineSpan[];
  /** Checked range: from the oldest backup leading here (or the first segment) to the newest. */
  fromSeg: number;
  toSeg: number;
  newest: string;
  segments: number;
}

/** What was found for one backup. */
export interface BackupWalReport {
  id: string;
  needed: { first: string; last: string };
  missing: Array<{ first: string; last: string; count: number }>;
  walIncluded: boolean;
}

/** The whole analysis. */
export interface ContinuityReport {
  timelines: TimelineReport[];
  gaps: WalGap[];
  backups: BackupWalReport[];
}

/** Missing runs of segment numbers of `present` (sorted) within [lo, hi]. */
export function missingRuns(present: readonly number[], lo: number, hi: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  if (lo > hi) return runs;
  let expected = lo;
  for (let i = lowerBound(present, lo); i < present.length; i++) {
    const p = present[i]!;
    if (p > hi) break;
    if (p > expected) runs.push([expected, p - 1]);
    expected = p + 1;
  }
  if (expected <= hi) runs.push([expected, hi]);
  return runs;
}

function neighbour(present: readonly number[], segNo: number, dir: -1 | 1): number | undefined {
  const i = lowerBound(present, segNo);
  return dir < 0 ? (i > 0 ? present[i - 1] : undefined) : i < present.length ? present[i] : undefined;
}

/** Analyses continuity; `histories` holds the parsed history file of each timeline that has one. */
export function analyzeContinuity(
  idx: WalIndex,
  histories: ReadonlyMap<number, HistoryEntry[]>,
  backups: readonly BackupWalNeed[],
): ContinuityReport {
  const segSize = idx.segSize;
  const name = (tli: number, seg: number) => segmentName(tli, seg, segSize);
  const timelines: TimelineReport[] = [];
  const gaps = new Map<string, WalGap>();

  for (const tli of [...idx.segments.keys()].sort((a, b) => a - b)) {
    const segs = idx.segments.get(tli)!;
    if (segs.length === 0) continue;
    const history = tli > 1 ? histories.get(tli) : undefined;
    const historyMissing = tli > 1 && !history;
    const spans = history ? timelineSpans(tli, history, segSize) : [{ tli }];
    const lineage = backups.filter((b) => providerOf(spans, b.startSeg) === b.tli);
    const newest = segs[segs.length - 1]!;
    const fromSeg = lineage.length > 0 ? Math.min(...lineage.map((b) => b.startSeg)) : segs[0]!;
    timelines.push({
      tli,
      ...(history ? { history } : {}),
      historyMissing,
      spans,
      fromSeg,
      toSeg: newest,
      newest: name(tli, newest),
      segments: segs.length,
    });
    for (const span of spans) {
      const lo = Math.max(span.fromSeg ?? fromSeg, fromSeg);
      const hi = Math.min(span.toSeg ?? newest, newest);
      const present = idx.segments.get(span.tli) ?? [];
      for (const [a, b] of missingRuns(present, lo, hi)) {
        const key = `${span.tli}:${a}:${b}`;
        const known = gaps.get(key);
        if (known) {
          known.timelines.push(tli);
          continue;
        }
        const before = neighbour(present, a, -1);
        const after = neighbour(present, b + 1, 1);
        const resumes = lineage
          .filter((x) => x.startSeg > b)
          .sort(
            (x, y) => x.startSeg - y.startSeg || (x.consistentAt ?? "").localeCompare(y.consistentAt ?? ""),
          )[0];
        gaps.set(key, {
          tli: span.tli,
          fromSeg: a,
          toSeg: b,
          count: b - a + 1,
          first: name(span.tli, a),
          last: name(span.tli, b),
          timelines: [tli],
          ...(before !== undefined ? { before: name(span.tli, before), beforeSeg: before } : {}),
          ...(after !== undefined ? { after: name(span.tli, after) } : {}),
          strandedBackups: lineage.filter((x) => x.startSeg < a && !x.walIncluded).map((x) => x.id),
          ...(resumes
            ? {
                resumesWith: {
                  id: resumes.id,
                  ...(resumes.consistentAt ? { consistentAt: resumes.consistentAt } : {}),
                },
              }
            : {}),
        });
      }
    }
  }

  const backupReports = backups.map((b): BackupWalReport => {
    const last = Math.max(b.stopSeg ?? b.startSeg, b.startSeg);
    const present = idx.segments.get(b.tli) ?? [];
    const missing = b.walIncluded
      ? []
      : missingRuns(present, b.startSeg, last).map(([a, z]) => ({
          first: name(b.tli, a),
          last: name(b.tli, z),
          count: z - a + 1,
        }));
    return {
      id: b.id,
      needed: { first: name(b.tli, b.startSeg), last: name(b.tli, last) },
      missing,
      walIncluded: Boolean(b.walIncluded),
    };
  });

  return {
    timelines,
    gaps: [...gaps.values()].sort((x, y) => x.tli - y.tli || x.fromSeg - y.fromSeg),
    backups: backupReports,
  };
}

/** The timeline `recovery_target_timeline = latest` follows: the newest one with a history file (or 1). */
export function latestRecoveryTimeline(idx: WalIndex): number {
  return Math.max(1, ...idx.histories.keys());
}

/** Where a recovery on timeline `tli` can read up to: its newest segment, if any. */
export function archiveEndOn(idx: WalIndex, tli: number): { segNo: number; name: string } | undefined {
  const seg = newestSegment(idx, tli);
  return seg === undefined ? undefined : { segNo: seg, name: segmentName(tli, seg, idx.segSize) };
}
