/** `attest audit` end to end on basebackup sources: the real CLI, real backups, real sandboxes. */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import { BASEBACKUPS, buildBasebackups, type Expected } from "./physical-fixture.js";
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
});

describe("attest audit on basebackup sources", () => {
  it("drills latest and sampled PITR targets, fails damaged backups, reports the WAL gap", async () => {
    const stall = "wal_stall: { warning: 36500d, critical: 73000d }";
    const ws = workspace(
      (dir) => `sandbox: { runtime: local }
policies: { rpo: 36500d }
sources:
  - name: base
    type: basebackup
    path: ${BASEBACKUPS}/base
    wal_archive: ${BASEBACKUPS}/wal
    ${stall}
    select: [latest, "random:1@36500d"]
    checks:
      queries:
        - { name: markers, database: postgres, sql: "select count(*) from markers", expect: ">= 1" }
  - name: gap
    type: basebackup
    path: ${BASEBACKUPS}/damaged/wal-gap/base
    wal_archive: ${BASEBACKUPS}/damaged/wal-gap/wal
    ${stall}
    select: b1-plain
  - name: truncated
    type: basebackup
    path: ${BASEBACKUPS}/damaged/truncated/base
    wal_archive: ${BASEBACKUPS}/wal
    ${stall}
    select: latest
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
`,
    );
    dirs.push(ws.dir);
    const r = await attest(["audit", "--config", ws.config, "--json", "--no-mail"]);
    const doc = JSON.parse(r.stdout) as RunResult;
    runs.push(doc.run.id);
    expect(r.code, r.stderr.slice(-2000)).toBe(1);
    expect(doc.status).toBe("fail");
    const base = doc.drills.filter((d) => d.source === "base");
    expect(base.map((d) => d.target?.kind).sort()).toEqual(["latest", "time"]);
    for (const d of base) expect(d.verdict, d.reason).toBe("pass");
    const latest = base.find((d) => d.target?.kind === "latest")!;
    expect(latest.backup).toMatchObject({ id: "b4-tar-zst", family: "physical", format: "base-tar-zst" });
    expect(latest.reached).toMatchObject({
      timeline: 1,
      lsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/),
    });
    expect(latest.timings.recoveryMs).toBeGreaterThan(0);
    const truncated = doc.drills.find((d) => d.source === "truncated")!;
    expect(truncated.verdict).toBe("fail");
    expect(truncated.reason).toContain("base.tar.gz is truncated or corrupt");
    // b1 itself restores to its own end; the gap after it is a critical violation
    expect(doc.drills.find((d) => d.source === "gap")?.verdict).toBe("pass");
    const gap = doc.violations.find((v) => v.source === "gap" && v.rule === "wal_continuity");
    expect(gap?.severity).toBe("critical");
    expect(gap?.message).toContain(expected.damaged["wal-gap"]!.removed!);
  });
});
