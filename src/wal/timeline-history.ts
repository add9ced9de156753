/** Timeline history files (`00000002.history`) and which timeline provides which segment. */
import { parseLsn, segmentOfLsn } from "./wal-names.js";

/** One line of a history file: `parentTLI  switchpoint  reason`. */
export interface HistoryEntry {
  /** The ancestor timeline. */
  tli: number;
  /** Where the ancestor ended and its child began. */
  switchpoint: bigint;
  reason: string;
}

/** Parses a history file's text; comment and blank lines are skipped. */
export function parseHistory(text: string): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)\s*(.*)$/.exec(line);
    if (!m) throw new Error(`not a timeline history line: "${line.slice(0, 80)}"`);
    out.push({ tli: Number(m[1]), switchpoint: parseLsn(m[2]!), reason: m[3]!.trim() });
  }
  return out;
}

/** A stretch of segments that one timeline provides to recovery on a target timeline. */
export interface TimelineSpan {
  tli: number;
  /** First segment this timeline provides (undefined: from the beginning). */
  fromSeg?: number;
  /** Last segment it provides (undefined: to the end). */
  toSeg?: number;
}

/**
 * The timelines recovery on `target` reads, oldest first, given the target's history.
 * As in XLogFileReadAnyTLI, the segment holding a switchpoint is read from the newer
 * timeline, so the parent provides segments before it and the child from it on.
 */
export function timelineSpans(
  target: number,
  history: readonly HistoryEntry[],
  segSize: number,
): TimelineSpan[] {
  const spans: TimelineSpan[] = [];
  let from: number | undefined;
  for (const h of history) {
    const switchSeg = segmentOfLsn(h.switchpoint, segSize);
    spans.push({ tli: h.tli, ...(from !== undefined ? { fromSeg: from } : {}), toSeg: switchSeg - 1 });
    from = switchSeg;
  }
  spans.push({ tli: target, ...(from !== undefined ? { fromSeg: from } : {}) });
  return spans;
}

/** The timeline that provides `segNo` among `spans`, if any. */
export function providerOf(spans: readonly TimelineSpan[], segNo: number): number | undefined {
  for (let i = spans.length - 1; i >= 0; i--) {
    const s = spans[i]!;
    if ((s.fromSeg === undefined || segNo >= s.fromSeg) && (s.toSeg === undefined || segNo <= s.toSeg))
      return s.tli;
  }
  return undefined;
}
