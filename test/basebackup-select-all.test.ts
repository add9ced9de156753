/**
 * `select: all` on a basebackup source with a WAL archive: each base backup is replayed through
 * the archive to the next backup's start (the newest to the archive's end), so the WAL between
 * backups is proven, and a gap in it fails the earlier backup naming the missing segment. Real
 * pg_basebackup output and real WAL (fixtures/build-basebackups.sh), real sandboxes; also the
 * timeline a drill records beside the one its sandbox was promoted to.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectPlans } from "../src/audit/select.js";
import type { HistoryRecord } from "../src/history/history-record.js";
import type { Backup, RunResult } from "../src/model.js";
import { withClient } from "../src/runtimes/sql.js";
import { planPhysical } from "../src/sources/basebackup/pitr-plan.js";
import { BackupDefectError } from "../src/util/errors.js";
import {
  BASEBACKUPS,
  buildBasebackups,
  drill,
  type Expected,
  leftovers,
  listFixture,
  sourceConfig,
} from "./physical-fixture.js";
import { attest, localSandboxes, workspace } from "./support/cli.js";

let expected: Expected;
const dirs: string[] = [];
const runs: string[] = [];

beforeAll(() => {
  expected = buildBasebackups();
});

afterAll(() => {
  for (const id of runs) expect(localSandboxes(id), `sandboxes of run ${id}`).toEqual([]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  expect(leftovers()).toEqual({ dirs: [], processes: [] });
});

const byId = (backups: Backup[], id: string) => {
  const b = backups.find((x) => x.id === id);
  if (!b) throw new Error(`no backup ${id} in ${backups.map((x) => x.id).join(", ")}`);
  return b;
};
const startOf = (id: string) => expected.backups.find((b) => b.dir === id)!.startLsn;

/**
 * The marker rows committed before each backup's start, in the order build-basebackups.sh
 * writes them (marker, switch_wal, pg_basebackup): what a replay to that start must hold.
 */
const BEFORE = {
  "b2-tar-gz": ["m01-before-b1", "m02-after-b1", "m03"],
  "b3-tar-lz4": ["m01-before-b1", "m02-after-b1", "m03", "m04-after-b2", "m05"],
  "b4-tar-zst": [
    "m01-before-b1",
    "m02-after-b1",
    "m03",
    "m04-after-b2",
    "m05",
    "m06-after-b3",
    "m07-last-before-fork",
    "m08-after-fork",
  ],
} as const;

describe("planning `all` on a basebackup source", () => {
  it("targets each backup at the next one's start on its timeline, the newest at the archive's end", async () => {
    const { source, backups } = await listFixture(sourceConfig("base", "wal"));
    const plans = source.plan("all", backups, new Date());
    expect(plans?.map((p) => [p.backup.id, p.target])).toEqual([
      ["b1-plain", { kind: "lsn", lsn: startOf("b2-tar-gz"), timeline: 1, nextBackup: "b2-tar-gz" }],
      ["b2-tar-gz", { kind: "lsn", lsn: startOf("b3-tar-lz4"), timeline: 1, nextBackup: "b3-tar-lz4" }],
      ["b3-tar-lz4", { kind: "lsn", lsn: startOf("b4-tar-zst"), timeline: 1, nextBackup: "b4-tar-zst" }],
      ["b4-tar-zst", { kind: "latest" }],
    ]);
    expect(plans![0]!.reason).toBe("all: through the archive to the start of b2-tar-gz");
  });

  it("all-new keeps those targets for the backups not verified yet", async () => {
    const { source, backups } = await listFixture(sourceConfig("base", "wal"));
    const verified = { recordType: "drill", source: source.name, verdict: "pass" };
    const history = ["b1-plain", "b3-tar-lz4"].map(
      (backupId) => ({ ...verified, backupId }) as unknown as HistoryRecord,
    );
    const plans = selectPlans(source, backups, { rules: ["all-new"], now: new Date(), history });
    expect(plans.map((p) => [p.backup.id, p.target?.kind, p.reason])).toEqual([
      ["b2-tar-gz", "lsn", "all-new: through the archive to the start of b3-tar-lz4"],
      ["b4-tar-zst", "latest", "all-new: through the archive to its end"],
    ]);
  });

  it("skips a later backup on a sibling timeline: its successor must descend from it", () => {
    // a: timeline 1 up to 0/3000000; b: timeline 2, forked off 1 at 0/2000000 (before a ended);
    // c: timeline 3, forked off 1 at 0/4000000 (after a ended); d: timeline 1 again, later still
    const backup = (id: string, tli: number, start: string, stop: string, at: string): Backup => ({
      source: "s",
      id,
      series: "cluster",
      family: "physical",
      format: "base-plain",
      createdAt: at,
      createdAtOrigin: "label",
      sizeBytes: 1,
      location: `/nowhere/${id}`,
      walRange: { timeline: tli, startLsn: start, stopLsn: stop },
      walArchive: { location: "/nowhere/wal" },
      labels: {},
    });
    const backups = [
      backup("a", 1, "0/2800028", "0/3000000", "2026-01-01T00:00:00.000Z"),
      backup("b", 2, "0/3800028", "0/3900000", "2026-01-02T00:00:00.000Z"),
      backup("c", 3, "0/4800028", "0/4900000", "2026-01-03T00:00:00.000Z"),
      backup("d", 1, "0/5800028", "0/5900000", "2026-01-04T00:00:00.000Z"),
    ];
    const histories = new Map([
      [2, [{ tli: 1, switchpoint: 0x2000000n, reason: "fork before a's end" }]],
      [3, [{ tli: 1, switchpoint: 0x4000000n, reason: "fork after a's end" }]],
    ]);
    const targets = planPhysical("all", backups, new Date(), Math.random, { histories })!.map((p) => [
      p.backup.id,
      p.target?.kind === "lsn" ? p.target.nextBackup : p.target?.kind,
    ]);
    // a goes to c (timeline 3 passes through 1 after a), b has no successor on its branch
    expect(targets).toEqual([
      ["a", "c"],
      ["b", "latest"],
      ["c", "latest"],
      ["d", "latest"],
    ]);
    // without history files the planner cannot tell branches apart: recovery will say
    expect(planPhysical("all", backups, new Date())![0]!.target).toMatchObject({ nextBackup: "b" });
  });

  it("without a WAL archive each backup is restored to its own consistency", async () => {
    const { source, backups } = await listFixture(sourceConfig("base", undefined));
    const plans = source.plan("all", backups, new Date());
    expect(plans?.map((p) => p.target)).toEqual(backups.map(() => ({ kind: "immediate" })));
  });
});

describe("drills of `all`", () => {
  it("each good backup replays to exactly the next backup's start", async () => {
    const cfg = sourceConfig("base", "wal");
    const { source, backups } = await listFixture(cfg);
    const plans = source.plan("all", backups, new Date())!;
    for (const plan of plans.filter((p) => p.target?.kind === "lsn")) {
      const next = plan.target?.kind === "lsn" ? plan.target.nextBackup! : "";
      const r = await drill(cfg, plan);
      expect(r.error, `${plan.backup.id}: ${r.error?.message}`).toBeUndefined();
      // every row committed before the next backup started, none after: the WAL between was replayed
      expect(r.markers, `${plan.backup.id} → ${next}`).toEqual(BEFORE[next as keyof typeof BEFORE]);
      expect(r.outcome!.reached).toMatchObject({ timeline: 1, promotedTimeline: 2 });
      expect(BigInt(`0x${r.outcome!.reached!.lsn!.replace("/", "")}`)).toBeGreaterThanOrEqual(
        BigInt(`0x${startOf(next).replace("/", "")}`),
      );
      expect(r.progress).toContain(
        `recovering to LSN ${startOf(next)} on timeline 1 (the start of the next backup, ${next})`,
      );
    }
  });

  it("a WAL gap between two backups fails the earlier one, naming the missing segment", async () => {
    const cfg = sourceConfig("damaged/wal-gap/base", "damaged/wal-gap/wal");
    const { source, backups } = await listFixture(cfg);
    const removed = expected.damaged["wal-gap"]!.removed!;
    const plans = source.plan("all", backups, new Date())!;
    const b2 = plans.find((p) => p.backup.id === "b2-tar-gz")!;
    const broken = await drill(cfg, b2);
    expect(broken.error).toBeInstanceOf(BackupDefectError);
    expect(broken.error!.message).toMatch(
      /^the WAL chain to the next backup \(b3-tar-lz4\) is broken: WAL replay ended before the recovery target was reached/,
    );
    expect(broken.error!.message).toContain(`WAL segment ${removed} is missing from the archive`);
    // the backup before it reaches its successor: the gap lies after b2's end
    const b1 = await drill(cfg, plans.find((p) => p.backup.id === "b1-plain")!);
    expect(b1.error?.message).toBeUndefined();
    expect(b1.markers).toEqual(BEFORE["b2-tar-gz"]);
  });
});

describe("`all` across a timeline fork", () => {
  it("replays to the next backup on its own timeline, not the newest one the archive holds", async () => {
    // b3 and b4 beside an archive where a promoted standby forked timeline 2 off timeline 1
    // between them: b4 was taken later on timeline 1, which recovery must keep following
    const scratch = mkdtempSync(join(tmpdir(), "attest-select-all-"));
    dirs.push(scratch);
    chmodSync(scratch, 0o755);
    mkdirSync(join(scratch, "base"), { mode: 0o755 });
    for (const id of ["b3-tar-lz4", "b4-tar-zst"])
      execFileSync("cp", ["-al", join(BASEBACKUPS, "base", id), join(scratch, "base", id)]);
    const cfg = sourceConfig("timeline/base", "timeline/wal", { path: join(scratch, "base") });
    const { source, backups } = await listFixture(cfg);
    const plans = source.plan("all", backups, new Date())!;
    const b3 = plans.find((p) => p.backup.id === "b3-tar-lz4")!;
    expect(b3.target).toEqual({
      kind: "lsn",
      lsn: startOf("b4-tar-zst"),
      timeline: 1,
      nextBackup: "b4-tar-zst",
    });
    const r = await drill(cfg, b3);
    expect(r.error?.message).toBeUndefined();
    expect(r.markers).toEqual(BEFORE["b4-tar-zst"]);
    expect(r.outcome!.reached).toMatchObject({ timeline: 1 });
    // the newest timeline (2) ends before b4 started: following it could never get there
    const { timeline: _, ...onNewest } = b3.target as { kind: "lsn"; lsn: string; timeline: number };
    const wrong = await drill(cfg, { ...b3, target: onNewest });
    expect(wrong.error?.message).toContain("WAL replay ended before the recovery target was reached");
  });
});

describe("the reached timeline", () => {
  it("is the one replay ended on; the sandbox's promoted timeline is recorded apart, as pg_control says", async () => {
    const cfg = sourceConfig("base", "wal");
    const { backups } = await listFixture(cfg);
    let control: number | undefined;
    const r = await drill(
      cfg,
      { backup: byId(backups, "b4-tar-zst"), target: { kind: "latest" }, reason: "latest" },
      async (sandbox) => {
        control = await withClient(sandbox, "postgres", async (c) =>
          Number((await c.query("select timeline_id from pg_control_checkpoint()")).rows[0].timeline_id),
        );
      },
    );
    expect(r.error?.message).toBeUndefined();
    const reached = r.outcome!.reached!;
    expect(control).toBe(2);
    expect(reached).toMatchObject({ timeline: 1, promotedTimeline: control });
    // the note says the same as the fields: no "timeline 1" beside an unexplained "timeline 2"
    const note = r.outcome!.notes.find((n) => n.includes("replay ended on timeline"));
    expect(note).toBe(
      `recovery stopped: no recovery target specified; replay ended on timeline 1 at ${reached.lsn}; the sandbox was then promoted to timeline 2 (its own, per pg_control)`,
    );
  });

  it("after following a timeline switch: replay ends on timeline 2, the sandbox runs on 3", async () => {
    const cfg = sourceConfig("timeline/base", "timeline/wal");
    const { backups } = await listFixture(cfg);
    const r = await drill(cfg, {
      backup: byId(backups, "b2-tar-gz"),
      target: { kind: "latest" },
      reason: "latest",
    });
    expect(r.error?.message).toBeUndefined();
    expect(r.outcome!.reached).toMatchObject({ timeline: 2, promotedTimeline: 3 });
    expect(r.outcome!.notes.join("\n")).toMatch(
      /replay ended on timeline 2 at [0-9A-F]+\/[0-9A-F]+; the sandbox was then promoted to timeline 3/,
    );
  });
});

describe("attest audit with select: all", () => {
  it("passes the intact chain, fails the backup before a WAL gap, records both timelines", async () => {
    const stall = "wal_stall: { warning: 36500d, critical: 73000d }";
    const ws = workspace(
      (dir) => `sandbox: { runtime: local }
sources:
  - name: gap
    type: basebackup
    path: ${BASEBACKUPS}/damaged/wal-gap/base
    wal_archive: ${BASEBACKUPS}/damaged/wal-gap/wal
    ${stall}
    select: all
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
`,
    );
    dirs.push(ws.dir);
    const r = await attest(["audit", "--config", ws.config, "--json", "--no-mail"]);
    const doc = JSON.parse(r.stdout) as RunResult;
    runs.push(doc.run.id);
    expect(r.code, r.stderr.slice(-2000)).toBe(1);
    const verdicts = Object.fromEntries(doc.drills.map((d) => [d.backup.id, d.verdict]));
    expect(verdicts).toEqual({
      "b1-plain": "pass",
      "b2-tar-gz": "fail",
      "b3-tar-lz4": "pass",
      "b4-tar-zst": "pass",
    });
    const b2 = doc.drills.find((d) => d.backup.id === "b2-tar-gz")!;
    expect(b2.target).toEqual({
      kind: "lsn",
      lsn: startOf("b3-tar-lz4"),
      timeline: 1,
      nextBackup: "b3-tar-lz4",
    });
    expect(b2.reason).toContain("the WAL chain to the next backup (b3-tar-lz4) is broken");
    expect(b2.reason).toContain(`WAL segment ${expected.damaged["wal-gap"]!.removed} is missing`);
    const b4 = doc.drills.find((d) => d.backup.id === "b4-tar-zst")!;
    expect(b4.target).toEqual({ kind: "latest" });
    expect(b4.reached).toMatchObject({ timeline: 1, promotedTimeline: 2 });
  });
});

describe("select: all on a pgBackRest repository (the same planner)", () => {
  it("replays the full backup to the incremental's start and the incremental to the archive's end", async () => {
    const pgbr = resolve("fixtures/generated/pgbackrest");
    execFileSync("bash", [resolve("fixtures/build-pgbackrest.sh"), pgbr], {
      stdio: ["ignore", "ignore", "inherit"],
      timeout: 300_000,
    });
    const e = JSON.parse(readFileSync(join(pgbr, "expected.json"), "utf8")) as { full: string; incr: string };
    const ws = workspace(
      (dir) => `sandbox: { runtime: local }
sources:
  - name: pgbr
    type: pgbackrest
    stanza: demo
    config_file: ${pgbr}/pgbackrest.conf
    select: all
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
`,
    );
    dirs.push(ws.dir);
    const r = await attest(["audit", "--config", ws.config, "--json", "--no-mail"]);
    const doc = JSON.parse(r.stdout) as RunResult;
    runs.push(doc.run.id);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const full = doc.drills.find((d) => d.backup.id === e.full)!;
    const incr = doc.drills.find((d) => d.backup.id === e.incr)!;
    expect(full.verdict, full.reason).toBe("pass");
    expect(full.target).toMatchObject({ kind: "lsn", timeline: 1, nextBackup: e.incr });
    expect(incr.verdict, incr.reason).toBe("pass");
    expect(incr.target).toEqual({ kind: "latest" });
  });
});
