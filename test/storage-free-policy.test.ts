/**
 * Policy `storage_free` on real filesystems: the free space of a test's own temp dir measured with
 * statfs, thresholds set above and below what it really has, and `attest check` reporting it.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { policiesFor } from "../src/audit/inventory.js";
import { parseConfig } from "../src/config/load.js";
import { localBackupPaths, measureDiskSpace, measurePaths } from "../src/policy/disk-space.js";
import { evaluatePolicies } from "../src/policy/evaluate.js";
import { type DiskSpace, storageFreeRule, storageFreeSchema } from "../src/policy/storage-free.js";
import { attest, DUMPS, workspace } from "./support/cli.js";

const dir = mkdtempSync(join(tmpdir(), "attest-storage-free-"));
const dumps = join(dir, "dumps");
const wal = join(dir, "wal");
const mirror = join(dir, "mirror");
let free = 0;
let percent = 0;

beforeAll(async () => {
  for (const d of [dumps, wal, mirror]) mkdirSync(d);
  const fs = await statfs(dir);
  free = fs.bavail * fs.bsize;
  percent = (fs.bavail / fs.blocks) * 100;
  // the thresholds below sit far from what the disk has: a test that would need a full disk is no test
  expect(free).toBeGreaterThan(64 * 1024 * 1024);
  expect(percent).toBeGreaterThan(0.1);
  expect(percent).toBeLessThan(99.9);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const measured = (paths: string[]) => measurePaths("app", paths);
const rule = (cfg: object, disks: DiskSpace[]) => storageFreeRule("app", storageFreeSchema.parse(cfg), disks);

describe("storage_free", () => {
  it("measures the filesystem of a directory once for the paths it holds", async () => {
    const disks = await measured([dumps, wal]);
    expect(disks).toHaveLength(1);
    expect(disks[0]).toMatchObject({ source: "app", paths: [dumps, wal] });
    const d = disks[0] as { freeBytes: number; totalBytes: number };
    expect(d.totalBytes).toBeGreaterThanOrEqual(d.freeBytes);
    // the same filesystem as the parent's statfs, give or take what others wrote since
    expect(Math.abs(d.freeBytes - free)).toBeLessThan(free / 2);
  });

  it("warns below min_free, naming the path, the free space and the threshold", async () => {
    const disks = await measured([dumps]);
    const [v, ...rest] = rule({ min_free: "999999TB" }, disks);
    expect(rest).toEqual([]);
    expect(v).toMatchObject({ source: "app", rule: "storage_free", severity: "warning" });
    expect(v!.message).toMatch(
      new RegExp(
        `^the filesystem holding ${dumps} has [0-9.]+ [KMGT]?i?B free \\([0-9.]+% of .*\\), below the minimum of 999999\\.0 TiB \\(storage_free\\)$`,
      ),
    );
    expect(v!.evidence).toMatchObject({ aspect: dumps, paths: [dumps] });
    expect(rule({ min_free: "1MB" }, disks)).toEqual([]);
    expect(rule({ min_free: 1024 }, disks)).toEqual([]);
  });

  it("warns below a percentage, and is critical below critical_below", async () => {
    const disks = await measured([dumps]);
    expect(rule({ min_free_percent: 99.95 }, disks).map((v) => v.severity)).toEqual(["warning"]);
    expect(rule({ min_free_percent: 0.05 }, disks)).toEqual([]);
    const crit = rule({ min_free: "999999TB", critical_below: "999998TB" }, disks);
    expect(crit.map((v) => v.severity)).toEqual(["critical"]);
    expect(crit[0]!.message).toContain("below the critical threshold of");
    expect(rule({ min_free: "999999TB", critical_below: "1MB" }, disks).map((v) => v.severity)).toEqual([
      "warning",
    ]);
    expect(rule({ critical_below_percent: 99.95 }, disks).map((v) => v.severity)).toEqual(["critical"]);
  });

  it("says when a directory cannot be measured", async () => {
    const gone = join(dir, "no-such-dir");
    const [v] = rule({ min_free: "1MB" }, await measured([gone]));
    expect(v).toMatchObject({
      severity: "warning",
      message: `cannot measure the free space of ${gone}: ENOENT`,
    });
  });

  it("refuses a threshold that is no size, and a block with no threshold", () => {
    expect(storageFreeSchema.safeParse({ min_free: "lots" }).success).toBe(false);
    expect(storageFreeSchema.safeParse({}).success).toBe(false);
    expect(storageFreeSchema.parse({ min_free: "20GB", critical_below: "1.5g" })).toEqual({
      min_free: 20 * 1024 ** 3,
      critical_below: Math.round(1.5 * 1024 ** 3),
    });
  });

  it("measures a source's local path, WAL archive and local stores, never an object store", async () => {
    const cfg = parseConfig(
      `
policies: { storage_free: { min_free: 999999TB } }
storage:
  mirror: { type: local, path: ${mirror} }
  bucket: { type: s3, endpoint: "https://127.0.0.1:9", bucket: backups, access_key_id: a, secret_access_key: s }
sources:
  - name: base
    type: basebackup
    path: ${dumps}
    wal_archive: ${wal}
  - name: in-bucket
    type: dump-dir
    storage: bucket
    path: dumps/
  - name: mirrored
    type: dump-dir
    storage: mirror
    path: dumps/
  - name: quiet
    type: dump-dir
    path: ${dumps}
    policies: { storage_free: { min_free: 1MB } }
    checks:
      objects: { database: app, sql: select 1, storage: mirror, path: files/ }
`,
      join(dir, "attest.yml"),
    );
    expect(cfg.sources.map((s) => localBackupPaths(s))).toEqual([
      [dumps, wal],
      [],
      [mirror],
      [dumps, mirror],
    ]);
    const inventories = cfg.sources.map((s) => ({ config: s }));
    const disks = await measureDiskSpace(cfg, inventories);
    expect(disks.map((d) => [d.source, d.paths])).toEqual([
      ["base", [dumps, wal]],
      ["mirrored", [mirror]],
      ["quiet", [dumps, mirror]],
    ]);
    const vs = evaluatePolicies({
      now: new Date(),
      sources: cfg.sources.map((s) => ({
        config: s,
        policies: policiesFor(cfg, s),
        backups: [],
        findings: [{ source: s.name, kind: "list_failed", severity: "critical", message: "not listed here" }],
      })),
      drills: [],
      history: [],
      disks,
    });
    // the source's own threshold replaces the global one
    expect(vs.map((v) => `${v.source}:${v.rule}:${v.severity}`)).toEqual([
      "base:storage_free:warning",
      "mirrored:storage_free:warning",
    ]);
  });

  it("is reported by attest check as a warning", async () => {
    const good = join(DUMPS, "good");
    const ws = workspace(
      () => `
policies: { storage_free: { min_free: 999999TB, critical_below: 1MB } }
sources:
  - { name: app, type: dump-dir, path: ${good} }
`,
    );
    try {
      const r = await attest(["check", "--config", ws.config]);
      expect(r.stdout).toMatch(/^ATTEST WARNING - 1 violation/);
      expect(r.stdout).toContain(`the filesystem holding ${good} has`);
      expect(r.code).toBe(1);
    } finally {
      rmSync(ws.dir, { recursive: true, force: true });
    }
  });
});
