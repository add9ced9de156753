/**
 * `type: barman` end to end: a real Barman 3.x catalog (fixtures/build-barman.sh: backups taken
 * with pg_basebackup streaming, WAL by pg_receivewal), listed and restored by the real CLI
 * with `barman recover` into local sandboxes; a damaged copy of the catalog fails.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backup, Finding, RunResult } from "../src/model.js";
import { attest, localSandboxes, workspace } from "./support/cli.js";

const BARMAN = resolve("fixtures/generated/barman");

interface Expected {
  server: string;
  backups: string[];
  markers: Array<{ id: number; label: string; committedAt: string }>;
  latest: string[];
  damaged: { backup: string; removed_wal: string; deleted_file: string };
}

let expected: Expected;
const dirs: string[] = [];
const runs: string[] = [];

/** Processes that belong to the fixture's Barman catalogs or to sandboxes of our runs. */
function strays(): string[] {
  const ps = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
  return ps.split("\n").filter(
    // receive-wal / pg_receivewal of the fixture name its catalog (or its build tree) on their command line
    (l) => l.includes(BARMAN) || runs.some((id) => l.includes(`attest-sandboxes/attest-${id}`)),
  );
}

beforeAll(() => {
  const started = Date.now();
  execFileSync("bash", [resolve("fixtures/build-barman.sh"), BARMAN], {
    stdio: ["ignore", "ignore", "inherit"],
    timeout: 300_000,
  });
  expected = JSON.parse(readFileSync(join(BARMAN, "expected.json"), "utf8")) as Expected;
  process.stderr.write(`barman fixture ready in ${Date.now() - started} ms\n`);
});

afterAll(() => {
  for (const id of runs) expect(localSandboxes(id), `sandboxes of run ${id}`).toEqual([]);
  expect(strays()).toEqual([]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function config(dir: string, markers = expected.latest): string {
  return `sandbox: { runtime: local }
policies: { rpo: 36500d }
sources:
  - name: barman
    type: barman
    server: pg
    config_file: ${BARMAN}/barman.conf
    select: latest
    checks:
      queries:
        - { name: markers, database: postgres, sql: "select string_agg(label, ',' order by id) from markers", expect: "= ${markers.join(",")}" }
  - name: damaged
    type: barman
    server: pg
    config_file: ${BARMAN}/damaged/barman.conf
    select: latest
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
`;
}

describe("barman source", () => {
  it("lists both backups with their catalog times, sizes and WAL ranges", async () => {
    const ws = workspace(config);
    dirs.push(ws.dir);
    const r = await attest(["list", "--config", ws.config, "--source", "barman", "--json"]);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      sources: Array<{ name: string; backups: Backup[]; findings: Finding[] }>;
    };
    const src = doc.sources.find((s) => s.name === "barman")!;
    expect(src.backups.map((b) => b.id)).toEqual(expected.backups);
    for (const b of src.backups) {
      expect(b).toMatchObject({
        family: "physical",
        format: "barman-postgres",
        series: "pg",
        createdAtOrigin: "catalog",
        pgMajor: 15,
      });
      expect(b.sizeBytes).toBeGreaterThan(10_000_000);
      expect(Date.parse(b.createdAt)).toBeLessThan(Date.now());
      expect(b.walRange?.startWal).toMatch(/^[0-9A-F]{24}$/);
    }
    // the second backup ended after the first marker row and before the second one's successors
    expect(src.backups[0]!.createdAt < src.backups[1]!.createdAt).toBe(true);
    expect(src.backups[1]!.createdAt < expected.markers.at(-1)!.committedAt).toBe(true);
  });

  it("drills a point in time: barman recover --target-time, then replay stops there", async () => {
    const at = expected.markers.find((m) => m.label === "m03-after-b2")!;
    const want = expected.markers.filter((m) => m.id <= at.id).map((m) => m.label);
    // a millisecond after m03's commit (times here have microseconds; a target has milliseconds)
    const target = new Date(Date.parse(at.committedAt) + 1).toISOString();
    const ws = workspace((dir) => config(dir, want));
    dirs.push(ws.dir);
    const r = await attest([
      "drill",
      "--config",
      ws.config,
      "--source",
      "barman",
      "--target-time",
      target,
      "--json",
    ]);
    const doc = JSON.parse(r.stdout) as RunResult;
    runs.push(doc.run.id);
    const d = doc.drills[0]!;
    expect(d.verdict, d.reason).toBe("pass");
    expect(d.target).toEqual({ kind: "time", time: target });
    expect(d.reached?.timestamp).toBe(new Date(at.committedAt).toISOString());
    expect(r.code).toBe(0);
  });

  it("restores the latest backup with barman recover; the damaged catalog fails", async () => {
    const ws = workspace(config);
    dirs.push(ws.dir);
    const r = await attest(["audit", "--config", ws.config, "--json", "--no-mail"]);
    const doc = JSON.parse(r.stdout) as RunResult;
    runs.push(doc.run.id);
    const good = doc.drills.find((d) => d.source === "barman")!;
    expect(good.verdict, good.reason).toBe("pass");
    expect(good.backup).toMatchObject({ id: expected.backups.at(-1), format: "barman-postgres" });
    expect(good.checks.find((c) => c.name.includes("markers"))?.status).toBe("pass");
    expect(good.reached?.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(good.reached?.timeline).toBe(1);
    expect(good.timings.recoveryMs).toBeGreaterThan(0);
    const bad = doc.drills.find((d) => d.source === "damaged")!;
    expect(bad.verdict).toBe("fail");
    expect(bad.reason).toContain("barman recover");
    const walFinding = (doc.findings ?? []).find(
      (f) => f.source === "damaged" && f.message.includes(expected.damaged.removed_wal),
    );
    expect(walFinding?.severity).toBe("critical");
    expect(doc.status).toBe("fail");
    expect(r.code).toBe(1);
  });
});
