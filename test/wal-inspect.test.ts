/** Static WAL inspection of the real archives of the basebackup fixture: nothing is restored. */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Finding } from "../src/model.js";
import { silentLogger } from "../src/util/log.js";
import { readWalArchive } from "../src/wal/wal-archive.js";
import {
  BASEBACKUPS,
  buildBasebackups,
  type Expected,
  listFixture,
  sourceConfig,
} from "./physical-fixture.js";
import { localSandboxesOf } from "./support/cli.js";

let expected: Expected;
beforeAll(() => {
  expected = buildBasebackups();
});

// sandboxes of this process only: other test files make theirs in the same directory meanwhile
const sandboxCount = () => localSandboxesOf(process.pid).length;

async function inspect(path: string, wal: string, extra: Record<string, unknown> = {}): Promise<Finding[]> {
  const { source, backups } = await listFixture(sourceConfig(path, wal, extra));
  return source.inspect(backups, { logger: silentLogger });
}

describe("static WAL inspection", () => {
  it("reads segment size, major and system identifier from a segment header", async () => {
    const a = await readWalArchive(join(BASEBACKUPS, "wal-gz"));
    expect(a.segSizeFrom).toBe("segment header");
    expect(a.index.segSize).toBe(expected.wal_segment_size);
    expect(a.header).toMatchObject({ pgMajor: 15, systemIdentifier: expected.system_identifier });
    // every file there is gzipped: segments and backup history files alike
    expect(a.index.compressed).toBe(readdirSync(join(BASEBACKUPS, "wal-gz")).length);
    expect(a.index.backupFiles.length).toBeGreaterThanOrEqual(4);
  });

  it("finds nothing wrong with the good archives (plain, gzipped, with a timeline switch)", async () => {
    expect(await inspect("base", "wal")).toEqual([]);
    expect(await inspect("base", "wal-gz")).toEqual([]);
    expect(await inspect("timeline/base", "timeline/wal")).toEqual([]);
  });

  it("names the removed segment, the time range PITR cannot reach, and the stranded backups", async () => {
    const before = sandboxCount();
    const findings = await inspect("damaged/wal-gap/base", "damaged/wal-gap/wal");
    expect(sandboxCount()).toBe(before);
    const removed = expected.damaged["wal-gap"]!.removed!;
    expect(findings).toHaveLength(1);
    const [gap] = findings;
    expect(gap).toMatchObject({ kind: "wal_gap", severity: "critical", series: expected.system_identifier });
    expect(gap!.message).toContain(`timeline 1: WAL ${removed} missing (1 segment`);
    const b3 = expected.backups.find((b) => b.dir === "b3-tar-lz4")!;
    const resumes = new Date(b3.stopTime.replace(" UTC", "Z").replace(" ", "T")).toISOString();
    expect(gap!.message).toMatch(
      new RegExp(
        `PITR impossible between 20\\S+ \\(archival of [0-9A-F]{24}, the last segment before the gap\\) and ${resumes} \\(b3-tar-lz4 consistent\\)`,
      ),
    );
    expect(gap!.message).toContain("backups that cannot be rolled forward past it: b1-plain, b2-tar-gz");
  });

  it("says which backup lacks the WAL it needs", async () => {
    const findings = await inspect("damaged/missing-wal/base", "damaged/missing-wal/wal");
    const missing = findings.filter((f) => f.kind === "wal_missing_for_backup");
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatchObject({ backupId: "b3-tar-lz4", severity: "critical" });
    expect(missing[0]!.message).toContain(
      `missing from the archive: ${expected.damaged["missing-wal"]!.removed}`,
    );
  });

  it("reports a timeline whose history file is missing", async () => {
    const findings = await inspect("damaged/no-history/base", "damaged/no-history/wal");
    expect(findings).toHaveLength(1);
    expect(findings[0]!.kind).toBe("wal_gap");
    expect(findings[0]!.message).toContain("timeline 2 has 1 archived segment");
    expect(findings[0]!.message).toContain("but no 00000002.history");
  });

  it("flags an archive that stopped receiving WAL", async () => {
    const findings = await inspect("base", "wal", { wal_stall: { warning: "1s", critical: "36500d" } });
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ kind: "wal_stalled", severity: "warning" });
    expect(findings[0]!.message).toMatch(/newest archived WAL [0-9A-F]{24} is .* old \(archived 20/);
    const critical = await inspect("base", "wal", { wal_stall: { warning: "1s", critical: "2s" } });
    expect(critical[0]).toMatchObject({ kind: "wal_stalled", severity: "critical" });
  });

  it("lists a backup whose base.tar cannot be read as a problem, and warns about strangers", async () => {
    const { source, backups } = await listFixture(sourceConfig("damaged", "wal"));
    // damaged/ holds scenario folders, not backups: each is reported, none is listed
    expect(backups).toEqual([]);
    const findings = await source.inspect(backups, { logger: silentLogger });
    expect(findings.filter((f) => f.kind === "backup_unrecognized").map((f) => f.backupId)).toEqual([
      "missing-wal",
      "modified",
      "no-history",
      "truncated",
      "wal-gap",
    ]);
  });
});
