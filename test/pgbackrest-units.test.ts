/** The pure parts of the pgbackrest source: info JSON, verify text, WAL gaps. */
import { describe, expect, it } from "vitest";
import { parseInfo } from "../src/sources/pgbackrest/pgbackrest-info.js";
import { verifyFindings } from "../src/sources/pgbackrest/pgbackrest-verify.js";
import { findGaps } from "../src/sources/pgbackrest/pgbackrest-wal.js";

const ctx = { source: "s", stanza: "demo", locate: (l: string) => `/repo/backup/demo/${l}` };

const backup = (label: string, type: string, start: string, stop: string, error = false) => ({
  label,
  type,
  error,
  timestamp: { start: 1795293555, stop: 1795293558 },
  lsn: { start: "0/1600028", stop: "0/1600100" },
  archive: { start, stop },
  info: { size: 100, delta: 100, repository: { size: 10, delta: 10 } },
  database: { id: 1, "repo-key": 1 },
});

const info = (over: Record<string, unknown>) =>
  JSON.stringify([
    {
      name: "demo",
      status: { code: 0, message: "ok" },
      archive: [
        { id: "15-1", min: "000000010000000000000010", max: "000000010000000000000020", database: { id: 1 } },
      ],
      db: [{ id: 1, "repo-key": 1, "system-id": 424242, version: "15" }],
      backup: [],
      ...over,
    },
    // a system identifier needs 64 bits: put it in as text, the way pgbackrest prints it
  ]).replace('"system-id":424242', '"system-id":7710727091929726995');

describe("pgbackrest info", () => {
  it("reads backups, keeps the exact system id, flags errors and WAL outside the archive", () => {
    const r = parseInfo(
      info({
        backup: [
          backup("F1", "full", "000000010000000000000008", "000000010000000000000008"),
          backup("F1_D1", "diff", "000000010000000000000012", "000000010000000000000012", true),
        ],
      }),
      ctx,
    );
    expect(r.backups.map((b) => [b.id, b.format, b.createdAt, b.sizeBytes, b.pgMajor])).toEqual([
      ["F1", "pgbackrest-full", "2026-11-21T20:39:18.000Z", 10, 15],
      ["F1_D1", "pgbackrest-diff", "2026-11-21T20:39:18.000Z", 10, 15],
    ]);
    expect(r.backups[0]!.labels.systemIdentifier).toBe("7710727091929726995");
    expect(r.backups[1]!.problem).toContain("errors");
    expect(r.findings.map((f) => [f.kind, f.backupId])).toEqual([["wal_missing_for_backup", "F1"]]);
  });

  it("turns a stanza status other than ok into a critical finding with pgbackrest's message", () => {
    const r = parseInfo(info({ status: { code: 1, message: "missing stanza path" }, archive: [] }), ctx);
    expect(r.findings).toEqual([
      expect.objectContaining({
        kind: "stanza_status",
        severity: "critical",
        message: expect.stringContaining("missing stanza path"),
      }),
    ]);
  });
});

describe("pgbackrest verify", () => {
  it("names invalid backups and says what was checked", () => {
    const text = [
      "stanza: demo",
      "status: error",
      "  archiveId: 15-1, total WAL checked: 45, total valid WAL: 45",
      "    missing: 0, checksum invalid: 0, size invalid: 0, other: 0",
      "  backup: F1, status: valid, total files checked: 982, total valid files: 982",
      "    missing: 0, checksum invalid: 0, size invalid: 0, other: 0",
      "  backup: F1_I1, status: invalid, total files checked: 983, total valid files: 982",
      "    missing: 1, checksum invalid: 0, size invalid: 0, other: 0",
    ].join("\n");
    const r = verifyFindings(text, { source: "s", stanza: "demo" });
    expect(r.findings.map((f) => [f.kind, f.backupId])).toEqual([["backup_invalid", "F1_I1"]]);
    expect(r.summary).toBe(
      "pgbackrest verify checked 2 backups (1965 files) and 45 WAL files against their checksums",
    );
  });
});

describe("WAL gaps in a repository", () => {
  it("follows log boundaries of any segment size and reports real gaps", () => {
    // 16 MiB: segment FF is the last of a log; 1 MiB: FFF
    expect(
      findGaps("15-1", ["0000000100000000000000FE", "0000000100000000000000FF", "000000010000000100000000"]),
    ).toEqual([]);
    expect(findGaps("15-1", ["000000010000000000000FFF", "000000010000000100000000"])).toEqual([]);
    expect(findGaps("15-1", ["000000010000000000000026", "000000010000000000000028"])).toEqual([
      { archiveId: "15-1", after: "000000010000000000000026", resumesAt: "000000010000000000000028" },
    ]);
    // before the oldest backup's start, gaps are expired WAL
    expect(
      findGaps(
        "15-1",
        ["000000010000000000000001", "000000010000000000000005", "000000010000000000000006"],
        "000000010000000000000005",
      ),
    ).toEqual([]);
  });
});
