/**
 * The preflight (a plain dump's hostile-content scan, before any sandbox exists) is a drill
 * phase of its own: its own progress line and its own duration in the record, never counted as
 * provisioning. Real pg_dump output (fixtures/build-dumps.sh), the real CLI, real sandboxes.
 */
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { DrillResult, RunResult } from "../src/model.js";
import { attest, DUMPS, localSandboxes, workspace } from "./support/cli.js";

const dirs: string[] = [];
const runs: string[] = [];
afterAll(() => {
  for (const id of runs) expect(localSandboxes(id), `sandboxes of run ${id}`).toEqual([]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Drills one dump file (copied into a folder of its own) with the real CLI. */
async function drillOne(file: string): Promise<{ drill: DrillResult; progress: string[] }> {
  const ws = workspace(
    (dir) => `sandbox: { runtime: local }
sources:
  - name: one
    type: dump-dir
    path: ${dir}/dumps
    select: all
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
`,
  );
  dirs.push(ws.dir);
  mkdirSync(join(ws.dir, "dumps"));
  copyFileSync(file, join(ws.dir, "dumps", file.split("/").pop()!));
  const r = await attest(["audit", "--config", ws.config, "--json", "--no-mail"]);
  const doc = JSON.parse(r.stdout) as RunResult;
  runs.push(doc.run.id);
  expect(doc.drills, r.stderr.slice(-2000)).toHaveLength(1);
  // without a terminal, progress is a JSON log line (the first of each drill always shows)
  const progress = r.stderr
    .split("\n")
    .filter((l) => l.includes('"progress"'))
    .map((l) => (JSON.parse(l) as { status: string }).status);
  return { drill: doc.drills[0]!, progress };
}

/** The phases a record times one after another: together never more than the whole drill. */
function phaseSum(t: DrillResult["timings"]): number {
  return (t.preflightMs ?? 0) + t.provisionMs + t.restoreMs + t.recoveryMs + t.checksMs + t.teardownMs;
}

describe("the preflight phase", () => {
  it("of a gzipped plain dump is timed on its own and shown as `preflight · scanning dump`", async () => {
    const { drill, progress } = await drillOne(join(DUMPS, "good", "app_20261120T0300.sql.gz"));
    expect(drill.verdict, drill.reason).toBe("pass");
    expect(drill.backup.format).toBe("plain-gzip");
    expect(progress[0]).toMatch(/^preflight \S+ · scanning dump$/);
    const t = drill.timings;
    expect(t.preflightMs).toEqual(expect.any(Number));
    expect(t.provisionMs).toBeGreaterThan(0);
    // provisioning no longer holds the preflight: counting it twice would exceed the total
    expect(phaseSum(t)).toBeLessThanOrEqual(t.totalMs);
  });

  it("that refuses a dump leaves provisioning at zero: no sandbox was made", async () => {
    // a plain dump cut off mid-stream: the scan reads all of it and refuses it before any sandbox
    const { drill, progress } = await drillOne(join(DUMPS, "cutoff", "app_cut_stream.sql.gz"));
    expect(drill.verdict, drill.reason).toBe("fail");
    expect(drill.reason).toMatch(/cut off/);
    expect(progress[0]).toMatch(/^preflight \S+ · scanning dump$/);
    expect(drill.timings.provisionMs).toBe(0);
    // decompressing and scanning 2 MB of SQL takes time, all of it the preflight's
    expect(drill.timings.preflightMs).toBeGreaterThan(0);
    expect(phaseSum(drill.timings)).toBeLessThanOrEqual(drill.timings.totalMs);
  });
});
