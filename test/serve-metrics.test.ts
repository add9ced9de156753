/** Metrics from run documents and history rows, and /runs summaries, without a service process. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { recordsOfRun } from "../src/history/history-record.js";
import { HistoryStore } from "../src/history/history-store.js";
import type { DrillResult, RunResult, Verdict, Violation } from "../src/model.js";
import { ServiceMetrics } from "../src/service/metrics.js";
import { recentRuns } from "../src/service/recent-runs.js";

const dir = mkdtempSync(join(tmpdir(), "attest-metrics-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function drill(
  source: string,
  verdict: Verdict,
  createdAt: string,
  totalMs: number,
  rpo?: number,
): DrillResult {
  return {
    source,
    series: "app",
    backup: {
      id: `${source}-${createdAt}`,
      family: "logical",
      format: "custom",
      createdAt,
      sizeBytes: 1,
      location: "/x",
    },
    runtime: "local",
    verdict,
    reason: verdict,
    timings: { provisionMs: 1000, restoreMs: 2000, recoveryMs: 0, checksMs: 500, teardownMs: 250, totalMs },
    checks: [],
    notes: [],
    ...(rpo === undefined ? {} : { measuredRpoSeconds: rpo }),
  };
}

function run(id: string, finishedAt: string, drills: DrillResult[], violations: Violation[] = []): RunResult {
  return {
    run: { id, kind: "audit", startedAt: finishedAt, finishedAt },
    status: "pass",
    drills,
    violations,
  };
}

async function values(m: ServiceMetrics): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await m.text()).body.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const rpoViolation: Violation = {
  source: "db",
  series: "app",
  rule: "rpo",
  severity: "critical",
  message: "old",
};

describe("service metrics", () => {
  const t = (iso: string) => Date.parse(iso) / 1000;
  const l = '{source="db",series="app"}';

  it("history rows and run documents give the same gauges; the newest drill wins", async () => {
    const first = run("r1", "2026-05-01T08:10:00.000Z", [
      drill("db", "pass", "2026-05-01T03:00:00.000Z", 4000, 120),
    ]);
    const second = run(
      "r2",
      "2026-05-02T08:10:00.000Z",
      [drill("db", "fail", "2026-05-02T03:00:00.000Z", 9000)],
      [rpoViolation],
    );
    const now = () => Date.parse("2026-05-02T09:00:00.000Z");
    const fromHistory = new ServiceMetrics({ now });
    fromHistory.observeRecords([
      ...recordsOfRun(first, first.run.finishedAt),
      ...recordsOfRun(second, second.run.finishedAt),
    ]);
    const fromRuns = new ServiceMetrics({ now });
    fromRuns.observeRun(first, ["db"]);
    fromRuns.observeRun(second, ["db"]);
    const a = await values(fromHistory);
    expect(a).toEqual(await values(fromRuns));
    expect(a.get(`attest_backup_last_timestamp_seconds${l}`)).toBe(t("2026-05-02T03:00:00Z"));
    expect(a.get(`attest_backup_since_last_completion_seconds${l}`)).toBe(6 * 3600);
    expect(a.get(`attest_verification_status${l}`)).toBe(0);
    expect(a.get(`attest_verification_last_success_timestamp_seconds${l}`)).toBe(t("2026-05-01T08:10:00Z"));
    expect(a.get(`attest_restore_duration_seconds{source="db",series="app",phase="total"}`)).toBe(9);
    expect(a.get(`attest_restore_duration_seconds{source="db",series="app",phase="teardown"}`)).toBe(0.25);
    expect(a.get(`attest_rpo_measured_seconds${l}`)).toBe(120);
    expect(a.get('attest_policy_violation{source="db",rule="rpo",severity="critical"}')).toBe(1);
    expect(a.get("attest_up")).toBe(1);
  });

  it("last verdict and its time per series, time since the last pass; an aborted drill is passed over", async () => {
    const now = () => Date.parse("2026-05-03T09:10:00.000Z");
    const m = new ServiceMetrics({ now });
    m.observeRun(run("r1", "2026-05-01T08:10:00.000Z", [drill("db", "pass", "2026-05-01T03:00:00.000Z", 1)]));
    m.observeRun(run("r2", "2026-05-02T08:10:00.000Z", [drill("db", "fail", "2026-05-02T03:00:00.000Z", 1)]));
    const aborted = {
      ...drill("db", "error", "2026-05-03T03:00:00.000Z", 1),
      reason: "drill aborted during restore: received SIGTERM",
    };
    m.observeRun(run("r3", "2026-05-03T08:10:00.000Z", [aborted]));
    const v = await values(m);
    const verdict = (x: string) =>
      v.get(`attest_drill_last_verdict{source="db",series="app",verdict="${x}"}`);
    // the failure stands: the abort proved nothing either way
    expect([verdict("pass"), verdict("warn"), verdict("fail"), verdict("error")]).toEqual([0, 0, 1, 0]);
    expect(v.get(`attest_verification_status${l}`)).toBe(0);
    expect(v.get(`attest_drill_last_timestamp_seconds${l}`)).toBe(t("2026-05-02T08:10:00Z"));
    expect(v.get(`attest_verification_since_last_success_seconds${l}`)).toBe(2 * 86400 + 3600);

    m.observeRun(
      run("r4", "2026-05-03T09:00:00.000Z", [drill("db", "error", "2026-05-03T03:00:00.000Z", 1)]),
    );
    const w = await values(m);
    expect(w.get(`attest_drill_last_verdict{source="db",series="app",verdict="error"}`)).toBe(1);
    expect(w.get(`attest_drill_last_verdict{source="db",series="app",verdict="fail"}`)).toBe(0);
  });

  it("attest_history_chain_ok follows the history file's hash chain", async () => {
    const csv = join(dir, "chain", "history.csv");
    const m = new ServiceMetrics({ historyFile: () => csv });
    // no history yet: nothing to distrust
    expect((await values(m)).get("attest_history_chain_ok")).toBe(1);
    const store = new HistoryStore(csv);
    store.append(
      recordsOfRun(
        run("r1", "2026-05-01T08:10:00.000Z", [drill("db", "pass", "2026-05-01T03:00:00.000Z", 1)]),
        "2026-05-01T08:10:00.000Z",
      ),
    );
    store.append(
      recordsOfRun(
        run("r2", "2026-05-02T08:10:00.000Z", [drill("db", "pass", "2026-05-02T03:00:00.000Z", 1)]),
        "2026-05-02T08:10:00.000Z",
      ),
    );
    expect((await values(m)).get("attest_history_chain_ok")).toBe(1);
    writeFileSync(csv, readFileSync(csv, "utf8").replace('"r1"', '"r10"'));
    expect((await values(m)).get("attest_history_chain_ok")).toBe(0);
    const help = (await m.text()).body;
    expect(help).toMatch(/# HELP attest_history_chain_ok 1 while .* 0 when/);
    expect(help).toMatch(/# HELP attest_verification_status Verdict .*: 1 pass or warn .*, 0 fail or error/);
  });

  it("a later evaluation without the violation clears it, for the sources it evaluated only", async () => {
    const m = new ServiceMetrics();
    m.observeRun(
      run("r1", "2026-05-01T08:00:00.000Z", [], [rpoViolation, { ...rpoViolation, source: "other" }]),
    );
    m.observeRun(run("r2", "2026-05-01T09:00:00.000Z", []), ["db"]);
    const v = await values(m);
    expect(v.has('attest_policy_violation{source="db",rule="rpo",severity="critical"}')).toBe(false);
    expect(v.get('attest_policy_violation{source="other",rule="rpo",severity="critical"}')).toBe(1);
  });

  it("counts runs and shows each plan's next fire time", async () => {
    const m = new ServiceMetrics({ nextRuns: () => new Map([["weekly", new Date("2026-05-04T08:00:00Z")]]) });
    m.countRun("audit", "pass");
    m.countRun("audit", "pass");
    m.countRun("check", "skipped");
    const v = await values(m);
    expect(v.get('attest_runs_total{kind="audit",status="pass"}')).toBe(2);
    expect(v.get('attest_runs_total{kind="check",status="skipped"}')).toBe(1);
    expect(v.get('attest_scheduler_next_run_timestamp_seconds{plan="weekly"}')).toBe(
      t("2026-05-04T08:00:00Z"),
    );
  });
});

describe("/runs summaries", () => {
  it("lists the newest run documents first, up to the limit, and names an unreadable one", () => {
    const runs = join(dir, "reports", "runs");
    mkdirSync(runs, { recursive: true });
    for (const [id, status] of [
      ["20260501t080000z-aaaa", "pass"],
      ["20260503t080000z-cccc", "fail"],
      ["20260502t080000z-bbbb", "warn"],
    ] as const) {
      const doc = run(id, "2026-05-01T08:10:00.000Z", [
        drill("db", status, "2026-05-01T03:00:00.000Z", 1000),
      ]);
      writeFileSync(join(runs, `${id}.json`), JSON.stringify({ ...doc, status }));
    }
    writeFileSync(join(runs, "20260504t080000z-dddd.json"), "{ torn");
    const out = recentRuns(join(dir, "reports"), 3);
    expect(out.map((r) => r.id)).toEqual([
      "20260504t080000z-dddd",
      "20260503t080000z-cccc",
      "20260502t080000z-bbbb",
    ]);
    expect(out[0]!.error).toMatch(/cannot read/);
    expect(out[1]).toMatchObject({
      status: "fail",
      drills: 1,
      verdicts: { fail: 1 },
      document: "runs/20260503t080000z-cccc.json",
    });
    expect(recentRuns(join(dir, "nowhere"), 5)).toEqual([]);
  });
});
