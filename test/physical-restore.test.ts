/**
 * Physical drills against real pg_basebackup output and a real WAL archive
 * (fixtures/build-basebackups.sh): every good backup reaches the end of the archive, sampled
 * point-in-time targets hold exactly the rows committed by then, timelines are followed,
 * snapshots come up by crash recovery or from their backup_label.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backup, type DrillPlan, detailOf } from "../src/model.js";
import { SnapshotRestorer } from "../src/restore/snapshot/snapshot-restorer.js";
import { LocalRuntime } from "../src/runtimes/local/local-runtime.js";
import { withClient } from "../src/runtimes/sql.js";
import { BackupDefectError } from "../src/util/errors.js";
import { silentLogger } from "../src/util/log.js";
import {
  BASEBACKUPS,
  buildBasebackups,
  drill,
  type Expected,
  leftovers,
  listFixture,
  markersAt,
  RUN_LABEL,
  sourceConfig,
} from "./physical-fixture.js";

let expected: Expected;

/** A small seeded generator, so a failing sample can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const byId = (backups: Backup[], id: string) => {
  const b = backups.find((x) => x.id === id);
  if (!b) throw new Error(`no backup ${id} in ${backups.map((x) => x.id).join(", ")}`);
  return b;
};
const ms = (iso: string) => new Date(iso).toISOString().slice(0, 23);

beforeAll(() => {
  expected = buildBasebackups();
});

afterAll(() => {
  expect(leftovers()).toEqual({ dirs: [], processes: [] });
});

describe("basebackup source", () => {
  it("lists every format with start/stop positions, timeline, stop time and major", async () => {
    const { backups } = await listFixture(sourceConfig("base", "wal"));
    expect(backups.map((b) => [b.id, b.format])).toEqual([
      ["b1-plain", "base-plain"],
      ["b2-tar-gz", "base-tar-gz"],
      ["b3-tar-lz4", "base-tar-lz4"],
      ["b4-tar-zst", "base-tar-zst"],
    ]);
    for (const b of backups) {
      const e = expected.backups.find((x) => x.dir === b.id)!;
      expect(b.family).toBe("physical");
      expect(b.pgMajor).toBe(15);
      expect(b.series).toBe(expected.system_identifier);
      expect(b.walRange).toMatchObject({ timeline: 1, startLsn: e.startLsn, stopLsn: e.stopLsn });
      expect(b.createdAtOrigin).toBe("label");
      expect(b.createdAt).toBe(new Date(e.stopTime.replace(" UTC", "Z").replace(" ", "T")).toISOString());
      expect(b.labels.createdAtFrom).toContain(e.historyFile);
      expect(b.manifest).toMatch(/backup_manifest$/);
      expect(detailOf(b, "basebackup")?.walSegmentSize).toBe(expected.wal_segment_size);
      // the last commit in the archive, read with pg_waldump: the upper end of the PITR window
      expect(b.walArchive?.end?.time).toBe(
        ms(expected.markers.find((m) => m.label === "m11-last")!.committedAt) + "Z",
      );
    }
  });
});

describe("physical drills of good backups", () => {
  it("replays every base backup to the end of the archive (latest)", async () => {
    const cfg = sourceConfig("base", "wal");
    const { backups } = await listFixture(cfg);
    const last = expected.markers.find((m) => m.label === "m11-last")!;
    for (const b of backups) {
      const r = await drill(cfg, { backup: b, target: { kind: "latest" }, reason: "latest" });
      expect(r.error, `${b.id}: ${r.error?.message}`).toBeUndefined();
      expect(r.markers, b.id).toEqual(expected.latest.timeline1);
      expect(r.outcome!.reached).toMatchObject({ timeline: 1, timestamp: `${ms(last.committedAt)}Z` });
      expect(r.outcome!.databases).toEqual(["postgres"]);
      expect(r.outcome!.recoveryMs).toBeGreaterThan(0);
      expect(r.outcome!.notes.join("\n")).toMatch(/pg_verifybackup: every file matches the manifest/);
      expect(r.outcome!.notes.join("\n")).toMatch(/replayed .* of WAL/);
      expect(r.progress.some((p) => p.startsWith("replaying WAL") || p.startsWith("recovering"))).toBe(true);
    }
  });

  it("reads gzipped segments from the second archive", async () => {
    const cfg = sourceConfig("base", "wal-gz");
    const { backups } = await listFixture(cfg);
    // pg_waldump (confined) read the newest gzipped segments after expanding them
    expect(backups[0]!.walArchive?.end?.from).toMatch(/pg_waldump/);
    expect(backups[0]!.walArchive?.end?.time).toBe(
      ms(expected.markers.find((m) => m.label === "m11-last")!.committedAt) + "Z",
    );
    const r = await drill(cfg, {
      backup: byId(backups, "b3-tar-lz4"),
      target: { kind: "latest" },
      reason: "latest",
    });
    expect(r.error?.message).toBeUndefined();
    expect(r.markers).toEqual(expected.latest.timeline1);
  });

  it("restores sampled point-in-time targets with exactly the rows committed by then", async () => {
    const cfg = sourceConfig("base", "wal");
    const { source, backups } = await listFixture(cfg, { random: seeded(20261121) });
    const plans = source.plan("random:4@36500d+oldest", backups, new Date());
    expect(plans).toBeDefined();
    const timed = plans!.filter((p) => p.target?.kind === "time");
    expect(timed).toHaveLength(4);
    expect(plans!.at(-1)).toMatchObject({ backup: { id: "b1-plain" }, target: { kind: "immediate" } });
    for (const plan of plans!) {
      const r = await drill(cfg, plan);
      expect(r.error, `${plan.reason}: ${r.error?.message}`).toBeUndefined();
      if (plan.target?.kind !== "time") {
        // immediate: exactly what was committed when b1 ended
        expect(r.markers).toEqual(["m01-before-b1"]);
        continue;
      }
      const t = plan.target.time;
      // each target is restored from the newest backup consistent before it
      expect(Date.parse(plan.backup.createdAt) + 1000).toBeLessThanOrEqual(Date.parse(t));
      const later = backups.filter((b) => Date.parse(b.createdAt) + 1000 <= Date.parse(t));
      expect(plan.backup.id).toBe(later.at(-1)!.id);
      expect(r.markers, `target ${t} from ${plan.backup.id}`).toEqual(markersAt(expected, t));
      // no timestamp when nothing committed between the backup's start and the target (the
      // backup's STOP TIME has whole seconds: a target can fall before the next commit)
      const reachedAt = r.outcome!.reached!.timestamp;
      if (reachedAt !== undefined) expect(Date.parse(reachedAt)).toBeLessThanOrEqual(Date.parse(t));
      else expect(r.outcome!.notes.join("\n")).toMatch(/recovery stopped: before /);
    }
  });

  it("plans `latest` as the newest backup replayed to the end of the archive", async () => {
    const { source, backups } = await listFixture(sourceConfig("base", "wal"));
    expect(source.plan("latest", backups, new Date())).toEqual([
      { backup: byId(backups, "b4-tar-zst"), target: { kind: "latest" }, reason: "latest" },
    ]);
    expect(source.plan("all-new", backups, new Date())).toBeUndefined();
  });

  it("restores to a time between two markers and to an LSN", async () => {
    const cfg = sourceConfig("base", "wal");
    const { backups } = await listFixture(cfg);
    const m3 = expected.markers.find((m) => m.label === "m03")!;
    const m4 = expected.markers.find((m) => m.label === "m04-after-b2")!;
    const between = new Date((Date.parse(m3.committedAt) + Date.parse(m4.committedAt)) / 2).toISOString();
    const r = await drill(cfg, {
      backup: byId(backups, "b1-plain"),
      target: { kind: "time", time: between },
      reason: "t",
    });
    expect(r.error?.message).toBeUndefined();
    expect(r.markers).toEqual(["m01-before-b1", "m02-after-b1", "m03"]);
    expect(r.outcome!.notes.join("\n")).toMatch(/recovery stopped: before /);

    const b3 = byId(backups, "b3-tar-lz4");
    const atEnd = await drill(cfg, {
      backup: b3,
      target: { kind: "lsn", lsn: b3.walRange!.stopLsn! },
      reason: "lsn",
    });
    expect(atEnd.error?.message).toBeUndefined();
    expect(atEnd.markers).toEqual(markersAt(expected, b3.createdAt));
  });

  it("follows the timeline switch of the promoted standby (history file, .partial segment)", async () => {
    const cfg = sourceConfig("timeline/base", "timeline/wal");
    const { backups } = await listFixture(cfg);
    const r = await drill(cfg, {
      backup: byId(backups, "b2-tar-gz"),
      target: { kind: "latest" },
      reason: "latest",
    });
    expect(r.error?.message).toBeUndefined();
    expect(r.markers).toEqual(expected.timeline.latest);
    expect(r.outcome!.reached?.timeline).toBe(2);
    expect(r.outcome!.notes.join("\n")).toMatch(/promoted to timeline 3/);
  });
});

describe("snapshot drills", () => {
  it("brings up a crash-consistent snapshot by crash recovery", async () => {
    const cfg = sourceConfig("snapshots", "wal");
    const { backups } = await listFixture(cfg);
    const crash = byId(backups, "crash");
    expect(crash).toMatchObject({ family: "snapshot", format: "snapshot", pgMajor: 15 });
    const r = await drill(cfg, { backup: crash, reason: "latest" });
    expect(r.error?.message).toBeUndefined();
    expect(r.markers).toEqual(expected.snapshots.crash);
    expect(r.outcome!.notes.join("\n")).toMatch(/crash recovery replayed up to/);
  });

  it("replays a snapshot with its backup_label to the backup's end from the archive", async () => {
    const cfg = sourceConfig("snapshots", "wal");
    const { backups } = await listFixture(cfg);
    const label = byId(backups, "label");
    expect(label).toMatchObject({ family: "snapshot", format: "snapshot-label", createdAtOrigin: "label" });
    const r = await drill(cfg, { backup: label, target: { kind: "immediate" }, reason: "id" });
    expect(r.error?.message).toBeUndefined();
    expect(r.markers).toEqual(expected.snapshots.label);
    expect(r.outcome!.notes.join("\n")).toMatch(/stale postmaster.pid removed/);
    expect(r.outcome!.notes.join("\n")).toMatch(/backup_label placed into the data directory/);
  });
});

describe("snapshot restore on a data directory the runtime provides (volume runtimes)", () => {
  it("recovers the snapshot in place", async () => {
    const scratch = mkdtempSync(join(tmpdir(), "attest-phys-volume-"));
    const dataDir = join(scratch, "data");
    try {
      execFileSync("cp", ["-a", join(BASEBACKUPS, "snapshots/crash/data"), dataDir]);
      execFileSync("chown", ["-R", "postgres:", scratch]);
      const { backups } = await listFixture(sourceConfig("snapshots", "wal"));
      const plan: DrillPlan = { backup: byId(backups, "crash"), reason: "volume" };
      const restorer = new SnapshotRestorer({ superuser: "postgres" });
      expect(restorer.inputs(plan)).toEqual([]);
      const runtime = new LocalRuntime({ user: "postgres", logger: silentLogger });
      const sandbox = await runtime.provision({
        pgMajor: 15,
        allowNewer: false,
        labels: { run: RUN_LABEL, source: "volume", backup: "crash" },
        mode: restorer.sandboxMode,
        inputs: [],
        dataDir,
      });
      try {
        const outcome = await restorer.restore(sandbox, {
          plan,
          logger: silentLogger,
          timeoutMs: 120_000,
          progress: () => {},
        });
        expect(outcome.reached?.timeline).toBe(2);
        const rows = await withClient(sandbox, "postgres", async (c) =>
          (await c.query<{ label: string }>("select label from public.markers order by id")).rows.map(
            (r) => r.label,
          ),
        );
        expect(rows).toEqual(expected.snapshots.crash);
      } finally {
        await sandbox.destroy();
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe("physical drills of damaged backups end `fail` with the reason and the last reachable point", () => {
  it("a WAL segment missing in the middle of the archive: latest stops at the gap", async () => {
    const cfg = sourceConfig("damaged/wal-gap/base", "damaged/wal-gap/wal");
    const { backups } = await listFixture(cfg);
    const removed = expected.damaged["wal-gap"]!.removed!;
    const r = await drill(cfg, {
      backup: byId(backups, "b1-plain"),
      target: { kind: "latest" },
      reason: "latest",
    });
    expect(r.error).toBeInstanceOf(BackupDefectError);
    expect(r.error!.message).toContain(`WAL segment ${removed} is missing from the archive`);
    expect(r.error!.message).toMatch(
      /replay ended at [0-9A-F]+\/[0-9A-F]+ on timeline 1 \(last transaction at 20/,
    );
    // a backup taken after the gap is not affected
    const ok = await drill(cfg, {
      backup: byId(backups, "b3-tar-lz4"),
      target: { kind: "latest" },
      reason: "latest",
    });
    expect(ok.error?.message).toBeUndefined();
    expect(ok.markers).toEqual(expected.latest.timeline1);
  });

  it("a WAL segment missing before a time target: the target is not reached", async () => {
    const cfg = sourceConfig("damaged/wal-gap/base", "damaged/wal-gap/wal");
    const { backups } = await listFixture(cfg);
    const target = expected.markers.find((m) => m.label === "m06-after-b3")!.committedAt;
    const r = await drill(cfg, {
      backup: byId(backups, "b2-tar-gz"),
      target: { kind: "time", time: target },
      reason: "t",
    });
    expect(r.error).toBeInstanceOf(BackupDefectError);
    expect(r.error!.message).toContain("WAL replay ended before the recovery target was reached");
    expect(r.error!.message).toMatch(
      /last reachable point: redo done at [0-9A-F]+\/[0-9A-F]+, last transaction at 20/,
    );
    expect(r.error!.message).toContain(
      `WAL segment ${expected.damaged["wal-gap"]!.removed} is missing from the archive`,
    );
  });

  it("a base backup file modified after the manifest was written: pg_verifybackup fails it", async () => {
    const cfg = sourceConfig("damaged/modified/base", "wal");
    const { backups } = await listFixture(cfg);
    const r = await drill(cfg, {
      backup: byId(backups, "b1-plain-modified"),
      target: { kind: "latest" },
      reason: "x",
    });
    expect(r.error).toBeInstanceOf(BackupDefectError);
    expect(r.error!.message).toMatch(/^pg_verifybackup: .*checksum mismatch for file/);
    expect(r.error!.message).toContain(expected.damaged.modified!.file!);
  });

  it("a truncated base.tar.gz", async () => {
    const cfg = sourceConfig("damaged/truncated/base", "wal");
    const { backups } = await listFixture(cfg);
    const r = await drill(cfg, {
      backup: byId(backups, "b2-tar-gz-truncated"),
      target: { kind: "latest" },
      reason: "x",
    });
    expect(r.error).toBeInstanceOf(BackupDefectError);
    expect(r.error!.message).toMatch(
      /base\.tar\.gz is truncated or corrupt: gzip: (stdin: )?unexpected end of file/,
    );
  });

  it("a backup whose required WAL is missing", async () => {
    const cfg = sourceConfig("damaged/missing-wal/base", "damaged/missing-wal/wal");
    const { backups } = await listFixture(cfg);
    const r = await drill(cfg, {
      backup: byId(backups, "b3-tar-lz4"),
      target: { kind: "immediate" },
      reason: "x",
    });
    expect(r.error).toBeInstanceOf(BackupDefectError);
    expect(r.error!.message).toContain("could not locate required checkpoint record");
    expect(r.error!.message).toContain("nothing could be replayed");
    expect(r.error!.message).toContain(
      `WAL segment ${expected.damaged["missing-wal"]!.removed} is missing from the archive`,
    );
  });

  it("a timeline's history file missing: recovery cannot follow the switch", async () => {
    const cfg = sourceConfig("damaged/no-history/base", "damaged/no-history/wal");
    const { backups } = await listFixture(cfg);
    const r = await drill(cfg, {
      backup: byId(backups, "b2-tar-gz"),
      target: { kind: "latest" },
      reason: "latest",
    });
    expect(r.error).toBeInstanceOf(BackupDefectError);
    expect(r.error!.message).toContain("the end of the archive was not reached");
    expect(r.error!.message).toContain("on timeline 1");
    expect(r.error!.message).toContain(
      "00000002.history is missing, so recovery could not switch to timeline 2",
    );
  });
});
