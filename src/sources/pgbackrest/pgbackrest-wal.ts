/**
 * Gaps in a repository's WAL archive, from the file names alone
 * (archive/<stanza>/<id>/<16 hex>/<24 hex>-<sha1>[.ext]). pgbackrest info gives only min/max
 * and pgbackrest verify (2.45) does not report missing segments between them.
 */

/** One stretch of missing segments: after `after`, the archive continues at `resumesAt`. */
export interface ArchiveGap {
  archiveId: string;
  after: string;
  resumesAt: string;
}

const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})-[0-9a-f]{40}/;

/**
 * Segment names (24 hex) per archive id, sorted, from `pgbackrest repo-ls --recurse
 * --output=json archive/<stanza>` (keys `<id>/<16 hex>/<24 hex>-<sha1>[.ext]`).
 */
export function archivedSegmentsOf(repoLsJson: string): Map<string, string[]> {
  const doc = JSON.parse(repoLsJson) as Record<string, { type?: string }>;
  const byId = new Map<string, Set<string>>();
  for (const [key, entry] of Object.entries(doc)) {
    if (entry.type !== "file") continue;
    const parts = key.split("/");
    if (parts.length !== 3 || !/^[0-9A-F]{16}$/.test(parts[1]!)) continue;
    const m = SEGMENT.exec(parts[2]!);
    if (!m) continue;
    const set = byId.get(parts[0]!) ?? new Set<string>();
    byId.set(parts[0]!, set);
    set.add(`${m[1]}${m[2]}${m[3]}`);
  }
  return new Map([...byId].map(([id, set]) => [id, [...set].sort()]));
}

/**
 * Whether `next` follows `prev` directly on one timeline: the low part counts up to the last
 * segment of a log file (segments per log = a power of two, whatever the segment size), then
 * the log number steps.
 */
function follows(prev: string, next: string): boolean {
  if (prev.slice(0, 8) !== next.slice(0, 8)) return false;
  const pLog = Number.parseInt(prev.slice(8, 16), 16);
  const pSeg = Number.parseInt(prev.slice(16), 16);
  const nLog = Number.parseInt(next.slice(8, 16), 16);
  const nSeg = Number.parseInt(next.slice(16), 16);
  if (nLog === pLog) return nSeg === pSeg + 1;
  const perLog = pSeg + 1;
  return nLog === pLog + 1 && nSeg === 0 && perLog >= 4 && (perLog & (perLog - 1)) === 0;
}

/** Gaps between consecutive segments of one timeline, from `from` (a segment name) on. */
export function findGaps(archiveId: string, segments: readonly string[], from?: string): ArchiveGap[] {
  const gaps: ArchiveGap[] = [];
  const list = from ? segments.filter((s) => s >= from) : segments;
  for (let i = 1; i < list.length; i++) {
    const prev = list[i - 1]!;
    const next = list[i]!;
    // a new timeline starts a new run of names; its history file decides how it continues
    if (prev.slice(0, 8) !== next.slice(0, 8)) continue;
    if (!follows(prev, next)) gaps.push({ archiveId, after: prev, resumesAt: next });
  }
  return gaps;
}
