/** The history CSV: append-only, hash-chained, repairs a torn last line. */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { recordsOfRun } from "../src/history/history-record.js";
import { GENESIS_HASH, HistoryStore, parseCsv } from "../src/history/history-store.js";
import type { RunResult } from "../src/model.js";

const run = (id: string, reason = "restored; 5 check(s) passed"): RunResult => ({
  run: { id, kind: "audit", startedAt: "2026-11-20T00:00:00.000Z", finishedAt: "2026-11-20T00:01:00.000Z" },
  status: "pass",
  drills: [
    {
      source: "s",
      series: "app",
      backup: {
        id: "a.dump",
        family: "logical",
        format: "custom",
        createdAt: "2026-11-19T03:00:00.000Z",
        sizeBytes: 10,
        location: "/x",
      },
      runtime: "local",
      verdict: "pass",
      reason,
      timings: { provisionMs: 1, restoreMs: 2, recoveryMs: 0, checksMs: 3, teardownMs: 4, totalMs: 10 },
      checks: [{ name: "amcheck", status: "pass", detail: "ok" }],
      notes: [],
    },
  ],
  violations: [
    {
      source: "s",
      series: "app",
      rule: "rpo",
      severity: "warning",
      message: 'a "quoted",\nmultiline message',
    },
  ],
});

describe("HistoryStore", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const store = () => {
    dir = mkdtempSync(join(tmpdir(), "attest-hist-"));
    return new HistoryStore(join(dir, "h.csv"));
  };

  it("appends with one header, links rows, and verifies", () => {
    const h = store();
    expect(h.head()).toBe(GENESIS_HASH);
    h.append(recordsOfRun(run("r1"), "t1"));
    h.append(recordsOfRun(run("r2"), "t2"));
    const text = readFileSync(h.path, "utf8");
    expect(text.match(/"recordType"/g)).toHaveLength(1);
    const rows = h.read();
    expect(rows.map((r) => `${r.recordType}:${r.runId}`)).toEqual([
      "drill:r1",
      "violation:r1",
      "drill:r2",
      "violation:r2",
    ]);
    expect(rows[1]!.message).toBe('a "quoted",\nmultiline message');
    expect(rows[2]!.prevHash).toBe(rows[1]!.hash);
    expect(h.verify()).toMatchObject({ ok: true, rows: 4, head: rows[3]!.hash });
  });

  it("detects an edited cell", () => {
    const h = store();
    h.append(recordsOfRun(run("r1"), "t1"));
    h.append(recordsOfRun(run("r2"), "t2"));
    writeFileSync(h.path, readFileSync(h.path, "utf8").replace('"r1","audit"', '"r1","drill"'));
    const v = h.verify();
    expect(v.ok).toBe(false);
    expect(v.problem).toMatch(/row 1 .*edited/);
  });

  it("detects a removed row", () => {
    const h = store();
    h.append(recordsOfRun(run("r1"), "t1"));
    h.append(recordsOfRun(run("r2"), "t2"));
    const lines = parseCsv(readFileSync(h.path, "utf8"));
    expect(lines.length).toBe(5);
    // rebuild the file without the third row (drill:r2)
    const text = readFileSync(h.path, "utf8");
    const drillR2 = text.indexOf('"drill","r2"');
    const end = text.indexOf("\n", drillR2);
    writeFileSync(h.path, text.slice(0, drillR2) + text.slice(end + 1));
    expect(h.verify()).toMatchObject({ ok: false });
    expect(h.verify().problem).toMatch(/link broken/);
  });

  it("cuts a torn last line (crash mid-write) before the next append, keeping the chain valid", () => {
    const h = store();
    h.append(recordsOfRun(run("r1"), "t1"));
    appendFileSync(h.path, '"drill","r-crashed","audit","t","s","app","half a ro');
    h.append(recordsOfRun(run("r3"), "t3"));
    expect(h.read().map((r) => r.runId)).toEqual(["r1", "r1", "r3", "r3"]);
    expect(h.verify().ok).toBe(true);
  });

  it("refuses a file that is not a history file", () => {
    const h = store();
    writeFileSync(h.path, "a,b,c\n1,2,3\n");
    expect(h.verify()).toMatchObject({ ok: false });
    expect(() => h.append([])).toThrow(/not an Attest history file/);
  });
});
