/** WAL names, timelines and continuity: pure string math, including a 100,000-segment archive. */
import { describe, expect, it } from "vitest";
import { parseHistory, providerOf, timelineSpans } from "../src/wal/timeline-history.js";
import type { WalArchive } from "../src/wal/wal-archive.js";
import { analyzeContinuity, type BackupWalNeed, missingRuns } from "../src/wal/wal-continuity.js";
import { inspectWal } from "../src/wal/wal-findings.js";
import { indexWalNames } from "../src/wal/wal-index.js";
import {
  formatLsn,
  parseLsn,
  parseWalFileName,
  segmentName,
  segmentOfLsn,
  segmentStartLsn,
} from "../src/wal/wal-names.js";

const MB16 = 16 * 1024 * 1024;
const MB1 = 1024 * 1024;

describe("WAL names", () => {
  it("parses and prints LSNs", () => {
    expect(parseLsn("0/1500028")).toBe(0x1500028n);
    expect(parseLsn("A/FF")).toBe((10n << 32n) | 0xffn);
    expect(formatLsn(parseLsn("3D/DC138"))).toBe("3D/DC138");
    expect(() => parseLsn("nonsense")).toThrow(/not an LSN/);
  });

  it("maps LSNs to segments for 16 MiB and 1 MiB segments", () => {
    expect(segmentName(1, segmentOfLsn(parseLsn("0/1500028"), MB16), MB16)).toBe("000000010000000000000001");
    expect(segmentName(1, segmentOfLsn(parseLsn("0/1500028"), MB1), MB1)).toBe("000000010000000000000015");
    expect(segmentName(1, segmentOfLsn(parseLsn("2/FF000000"), MB16), MB16)).toBe("0000000100000002000000FF");
    expect(segmentName(3, segmentOfLsn(parseLsn("2/FFF00000"), MB1), MB1)).toBe("000000030000000200000FFF");
    expect(segmentStartLsn(segmentOfLsn(parseLsn("5/12345678"), MB16), MB16)).toBe(parseLsn("5/12000000"));
  });

  it("classifies archive file names", () => {
    expect(parseWalFileName("0000000100000002000000FF", MB16)).toEqual({
      kind: "segment",
      name: "0000000100000002000000FF",
      tli: 1,
      segNo: 2 * 256 + 255,
    });
    expect(parseWalFileName("000000010000000000000015.gz", MB1)).toMatchObject({
      kind: "segment",
      segNo: 0x15,
      compression: "gz",
    });
    expect(parseWalFileName("00000001000000000000003D.partial", MB1)).toMatchObject({
      kind: "partial",
      tli: 1,
      segNo: 0x3d,
    });
    expect(parseWalFileName("00000002.history", MB1)).toMatchObject({ kind: "history", tli: 2 });
    expect(parseWalFileName("00000002.history.gz", MB1)).toMatchObject({
      kind: "history",
      tli: 2,
      compression: "gz",
    });
    expect(parseWalFileName("000000010000000000000015.00000028.backup", MB1)).toMatchObject({
      kind: "backup",
      segNo: 0x15,
      offset: 0x28,
    });
    expect(parseWalFileName("000000010000000000000015.tmp", MB1)).toBeUndefined();
    expect(parseWalFileName("archive_status", MB1)).toBeUndefined();
    expect(parseWalFileName("00000001000000000000001g", MB1)).toBeUndefined();
  });
});

describe("timelines", () => {
  it("reads history files and says which timeline provides which segment", () => {
    const h = parseHistory(
      "1\t0/3DDC138\tno recovery target specified\n\n2\t0/5000000\tbefore 2026-11-21 19:35:15+00\n",
    );
    expect(h.map((e) => [e.tli, formatLsn(e.switchpoint)])).toEqual([
      [1, "0/3DDC138"],
      [2, "0/5000000"],
    ]);
    const spans = timelineSpans(3, h, MB1);
    expect(spans).toEqual([
      { tli: 1, toSeg: 0x3c },
      { tli: 2, fromSeg: 0x3d, toSeg: 0x4f },
      { tli: 3, fromSeg: 0x50 },
    ]);
    expect(providerOf(spans, 0x3c)).toBe(1);
    // the segment holding the switchpoint is read from the newer timeline
    expect(providerOf(spans, 0x3d)).toBe(2);
    expect(providerOf(spans, 0x50)).toBe(3);
    expect(() => parseHistory("garbage line")).toThrow(/not a timeline history line/);
  });

  it("finds missing runs in sorted segment numbers", () => {
    expect(missingRuns([1, 2, 3, 7, 8, 10], 0, 12)).toEqual([
      [0, 0],
      [4, 6],
      [9, 9],
      [11, 12],
    ]);
    expect(missingRuns([5, 6], 5, 6)).toEqual([]);
  });
});

/** An archive of 100,000 segment names on timeline 1 (16 MiB segments, across 390 log ids), damaged. */
function bigArchive() {
  const names: string[] = [];
  const removed = new Set([25_000, 80_000, 80_001, 80_002]);
  for (let seg = 1000; seg < 101_000; seg++) {
    if (removed.has(seg)) continue;
    // every 10th segment gzipped, as a compressing archive_command leaves them
    names.push(segmentName(1, seg, MB16) + (seg % 10 === 0 ? ".gz" : ""));
  }
  // timeline 2 branched at segment 60,000: its history, the old timeline's .partial, its own segments
  names.push("00000002.history", `${segmentName(1, 60_000, MB16)}.partial`);
  for (let seg = 60_000; seg < 60_500; seg++) names.push(segmentName(2, seg, MB16));
  names.push(`${segmentName(1, 1000, MB16)}.00000028.backup`, "README.txt");
  const histories = new Map([
    [
      2,
      parseHistory(`1\t${formatLsn(segmentStartLsn(60_000, MB16) + 0x28n)}\tno recovery target specified\n`),
    ],
  ]);
  return { names, histories };
}

describe("continuity of a 100,000-segment archive", () => {
  it("indexes the names and names every gap, per timeline", () => {
    const { names, histories } = bigArchive();
    expect(names.length).toBeGreaterThan(100_000);
    const t0 = performance.now();
    const idx = indexWalNames(names, MB16);
    const backups: BackupWalNeed[] = [
      { id: "oldest", tli: 1, startSeg: 1000, stopSeg: 1001, consistentAt: "2026-01-01T00:00:00.000Z" },
      { id: "middle", tli: 1, startSeg: 50_000, stopSeg: 50_000, consistentAt: "2026-01-05T00:00:00.000Z" },
      { id: "late-tl1", tli: 1, startSeg: 80_001, stopSeg: 80_003, consistentAt: "2026-01-09T00:00:00.000Z" },
      {
        id: "after-gap",
        tli: 1,
        startSeg: 90_000,
        stopSeg: 90_000,
        consistentAt: "2026-01-10T00:00:00.000Z",
      },
    ];
    const report = analyzeContinuity(idx, histories, backups);
    const ms = performance.now() - t0;
    console.log(`100k-name WAL inspection (index + analysis): ${ms.toFixed(1)} ms`);

    expect(idx.segments.get(1)?.length).toBe(100_000 - 4);
    expect(idx.partials.map((p) => p.name)).toEqual([`${segmentName(1, 60_000, MB16)}.partial`]);
    expect(idx.backupFiles).toHaveLength(1);
    expect(idx.other).toEqual(["README.txt"]);
    // 25,000 and 80,000 would have been gzipped but are removed
    expect(idx.compressed).toBe(10_000 - 2);

    expect(report.gaps.map((g) => [g.tli, g.first, g.last, g.count])).toEqual([
      [1, segmentName(1, 25_000, MB16), segmentName(1, 25_000, MB16), 1],
      [1, segmentName(1, 80_000, MB16), segmentName(1, 80_002, MB16), 3],
    ]);
    const [first, second] = report.gaps;
    // the first gap lies on timeline 1 before the fork: both timelines' recovery paths cross it
    expect(first!.timelines).toEqual([1, 2]);
    expect(first!.before).toBe(segmentName(1, 24_999, MB16));
    expect(first!.after).toBe(segmentName(1, 25_001, MB16));
    expect(first!.strandedBackups).toEqual(["oldest"]);
    expect(first!.resumesWith).toEqual({ id: "middle", consistentAt: "2026-01-05T00:00:00.000Z" });
    expect(second!.timelines).toEqual([1]);
    expect(second!.strandedBackups).toEqual(["oldest", "middle"]);
    expect(second!.resumesWith?.id).toBe("after-gap");

    const tl2 = report.timelines.find((t) => t.tli === 2)!;
    expect(tl2.historyMissing).toBe(false);
    expect(tl2.fromSeg).toBe(1000);
    expect(tl2.newest).toBe(segmentName(2, 60_499, MB16));

    expect(report.backups.find((b) => b.id === "late-tl1")!.missing).toEqual([
      { first: segmentName(1, 80_001, MB16), last: segmentName(1, 80_002, MB16), count: 2 },
    ]);
    expect(report.backups.filter((b) => b.missing.length > 0).map((b) => b.id)).toEqual(["late-tl1"]);
  });

  it("turns the analysis into findings with the time range PITR cannot reach", () => {
    const { names, histories } = bigArchive();
    const idx = indexWalNames(names, MB16);
    const mtimes = new Map<string, Date>([
      [segmentName(1, 24_999, MB16), new Date("2026-01-03T12:00:00Z")],
      [`${segmentName(1, 79_999, MB16)}`, new Date("2026-01-08T08:00:00Z")],
      [segmentName(1, 100_999, MB16), new Date("2026-01-11T00:00:00Z")],
      [segmentName(2, 60_499, MB16), new Date("2026-01-07T00:00:00Z")],
    ]);
    const archive: WalArchive = {
      dir: "/archive",
      index: idx,
      histories,
      problems: [],
      segSizeFrom: "segment header",
      path: (n) => `/archive/${n}`,
      mtimeOf: (n) => mtimes.get(n),
    };
    const result = inspectWal(
      archive,
      [
        { id: "oldest", tli: 1, startSeg: 1000, stopSeg: 1001, consistentAt: "2026-01-01T00:00:00.000Z" },
        { id: "middle", tli: 1, startSeg: 50_000, consistentAt: "2026-01-05T00:00:00.000Z" },
        { id: "late-tl1", tli: 1, startSeg: 80_001, stopSeg: 80_003 },
      ],
      {
        source: "big",
        now: new Date("2026-01-11T10:00:00Z"),
        stallWarningMs: 3_600_000,
        stallCriticalMs: 86_400_000,
      },
    );
    const gaps = result.findings.filter((f) => f.kind === "wal_gap");
    expect(gaps).toHaveLength(2);
    expect(gaps[0]!.severity).toBe("critical");
    expect(gaps[0]!.message).toContain(`WAL ${segmentName(1, 25_000, MB16)} missing (1 segment`);
    expect(gaps[0]!.message).toContain(
      "PITR impossible between 2026-01-03T12:00:00.000Z (archival of 0000000100000061000000A7, the last segment before the gap) and 2026-01-05T00:00:00.000Z (middle consistent)",
    );
    expect(gaps[1]!.message).toContain(`${segmentName(1, 80_000, MB16)}..${segmentName(1, 80_002, MB16)}`);
    expect(gaps[1]!.message).toContain("and the next base backup (none has been taken since)");
    const missing = result.findings.filter((f) => f.kind === "wal_missing_for_backup");
    expect(missing.map((f) => f.backupId)).toEqual(["late-tl1"]);
    const stalled = result.findings.filter((f) => f.kind === "wal_stalled");
    expect(stalled).toHaveLength(1);
    expect(stalled[0]!.severity).toBe("warning");
    expect(stalled[0]!.message).toContain(`newest archived WAL ${segmentName(1, 100_999, MB16)} is 10h old`);
    expect(result.newest?.archivedAt).toBe("2026-01-11T00:00:00.000Z");
  });

  it("reports a timeline whose history file is missing", () => {
    const names = [
      "000000010000000000000010",
      "000000010000000000000011",
      "000000020000000000000011",
      "000000020000000000000012",
    ];
    const report = analyzeContinuity(indexWalNames(names, MB16), new Map(), []);
    expect(report.timelines.map((t) => [t.tli, t.historyMissing])).toEqual([
      [1, false],
      [2, true],
    ]);
    expect(report.gaps).toEqual([]);
  });
});
