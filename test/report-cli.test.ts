/** `attest check` and `attest report` through the real CLI, on the real sample dumps. */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { recordsOfRun } from "../src/history/history-record.js";
import { HistoryStore } from "../src/history/history-store.js";
import type { RunResult } from "../src/model.js";
import { backup, DAY, drill } from "./report-fixtures.js";
import { attest, DUMPS, workspace } from "./support/cli.js";

const config = (policies: string) =>
  workspace(
    (dir) => `organization: { name: ACME Corp, department: Infrastructure }
policies: ${policies}
sources:
  - name: good
    type: dump-dir
    path: ${join(DUMPS, "good")}
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
`,
  );

describe("attest check", () => {
  it("OK: one Nagios line with perfdata per series, exit 0", async () => {
    const ws = config("{ rpo: 3650d }");
    const r = await attest(["check", "--config", ws.config]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^ATTEST OK - 2 series checked, no violation \| violations_critical=0;;0;0 violations_warning=0;0;;0 history_chain_ok=1;;1:;0;1 /,
    );
    expect(lines[0]).toMatch(/ good_app_age=\d+s;;315360000;0/);
    expect(lines[0]).toMatch(/ good_crm_age=\d+s;;315360000;0$/);
  });

  it("CRITICAL: names the violations, exit 2", async () => {
    const ws = config("{ rpo: 1s }");
    const r = await attest(["check", "--config", ws.config]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(
      /^ATTEST CRITICAL - 2 violations \(2 critical\): good\/app rpo: newest backup of good\/app is .* old \(app_20261120T0300\.\w+, taken .*\); the RPO target is 1\.0s; good\/crm rpo: /,
    );
    expect(r.stdout).toMatch(/good_app_age=\d+s;;1;0/);
    // the perfdata's own threshold says 2 critical violations are critical
    expect(r.stdout).toContain("violations_critical=2;;0;0");
  });

  /** History of drills of the good source, relative to the real clock. */
  function drillHistory(
    csv: string,
    rows: Array<[series: string, hoursAgo: number, verdict: "pass" | "fail" | "error"]>,
  ) {
    const store = new HistoryStore(csv);
    const now = new Date();
    for (const [k, [series, hoursAgo, verdict]] of rows.entries()) {
      const at = new Date(now.getTime() - hoursAgo * 3_600_000);
      const b = backup("good", series, (hoursAgo + 5) * 3_600_000, {}, now);
      const run: RunResult = {
        run: { id: `audit-${k}`, kind: "audit", startedAt: at.toISOString(), finishedAt: at.toISOString() },
        status: verdict,
        drills: [drill(b, verdict)],
        violations: [],
      };
      store.append(recordsOfRun(run, at.toISOString()));
    }
    return store;
  }

  it("CRITICAL when the newest drill failed, although an older drill passed inside verify_every", async () => {
    const ws = config("{ rpo: 3650d, verify_every: 7d }");
    const csv = join(ws.dir, "reports", "history.csv");
    drillHistory(csv, [
      ["crm", 30, "pass"],
      ["app", 48, "pass"],
      ["app", 2, "fail"],
    ]);
    const r = await attest(["check", "--config", ws.config]);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stdout).toMatch(
      /^ATTEST CRITICAL - 1 violation \(1 critical\): good\/app last_drill: the newest restore drill of good\/app FAILED /,
    );
    expect(r.stdout).toContain(" good_app_last_drill=2;0;1;0;2");
    expect(r.stdout).toContain(" good_crm_last_drill=0;0;1;0;2");

    // the newest drill could not verify: WARNING
    const ws2 = config("{ rpo: 3650d, verify_every: 7d }");
    drillHistory(join(ws2.dir, "reports", "history.csv"), [
      ["crm", 30, "pass"],
      ["app", 48, "pass"],
      ["app", 2, "error"],
    ]);
    const w = await attest(["check", "--config", ws2.config]);
    expect(w.code, w.stdout).toBe(1);
    expect(w.stdout).toMatch(
      /^ATTEST WARNING - 1 violation \(0 critical\): good\/app last_drill: .* could not verify/,
    );
    expect(w.stdout).toContain(" good_app_last_drill=1;0;1;0;2");
  });

  it("CRITICAL when the history chain does not verify", async () => {
    const ws = config("{ rpo: 3650d }");
    const csv = join(ws.dir, "reports", "history.csv");
    drillHistory(csv, [
      ["crm", 30, "pass"],
      ["app", 20, "pass"],
    ]);
    writeFileSync(csv, readFileSync(csv, "utf8").replace('"audit-0"', '"audit-7"'));
    const r = await attest(["check", "--config", ws.config]);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stdout).toMatch(
      /^ATTEST CRITICAL - history chain broken: history chain does not verify: row 1 \(drill audit-7\): content does not match its hash/,
    );
    expect(r.stdout).toContain(" history_chain_ok=0;;1:;0;1");
  });

  it("WARNING: exit 1; --json prints the run document of kind check", async () => {
    const ws = config("{ rpo: 3650d, retention: { min_count: 50 } }");
    const r = await attest(["check", "--config", ws.config]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^ATTEST WARNING - 2 violations \(0 critical\): good\/app retention: good\/app keeps \d+ backups; /,
    );
    const j = await attest(["check", "--config", ws.config, "--json"]);
    expect(j.code).toBe(1);
    const doc = JSON.parse(j.stdout) as RunResult;
    expect(doc.run.kind).toBe("check");
    expect(doc.status).toBe("warn");
    expect(doc.drills).toEqual([]);
    expect(doc.violations.map((v) => [v.series, v.rule, v.severity])).toEqual([
      ["app", "retention", "warning"],
      ["crm", "retention", "warning"],
    ]);
  });

  it("UNKNOWN: a config error or an unknown source, exit 3", async () => {
    const ws = config("{ rpo: 26x }");
    const r = await attest(["check", "--config", ws.config]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^ATTEST UNKNOWN - .*policies\.rpo: "26x" is not a duration/);
    const ok = config("{ rpo: 26h }");
    const u = await attest(["check", "--config", ok.config, "--source", "nope"]);
    expect(u.code).toBe(3);
    expect(u.stdout).toBe("ATTEST UNKNOWN - unknown source nope (configured: good)\n");
  });
});

/** Writes a history of weekly audits into the workspace. */
function writeHistory(csv: string): string {
  const store = new HistoryStore(csv);
  const app = backup("good", "app", 0);
  for (let k = 1; k <= 4; k++) {
    const at = new Date(Date.parse("2026-10-01T08:00:00Z") + k * 7 * DAY);
    const b = {
      ...app,
      id: `app_${at.toISOString().slice(0, 10)}.dump`,
      createdAt: new Date(at.getTime() - 5 * 3_600_000).toISOString(),
    };
    const run: RunResult = {
      run: { id: `audit-${k}`, kind: "audit", startedAt: at.toISOString(), finishedAt: at.toISOString() },
      status: k === 3 ? "fail" : "pass",
      drills: [drill(b, k === 3 ? "fail" : "pass", (10 + k) * 60_000)],
      violations:
        k >= 3
          ? [
              {
                source: "good",
                series: "app",
                rule: "verify_every",
                severity: "warning",
                message: "no passing restore drill of good/app for 8d",
                evidence: { aspect: "coverage" },
              },
            ]
          : [],
    };
    store.append(recordsOfRun(run, at.toISOString()));
  }
  return store.head();
}

describe("attest report", () => {
  it("exports PDF, CSV and JSON for the period from history alone; exit 0", async () => {
    const ws = config("{ rpo: 26h, rto: 30m, verify_every: 7d }");
    const head = writeHistory(join(ws.dir, "reports", "history.csv"));
    const out = join(ws.dir, "export");
    const r = await attest([
      "report",
      "--config",
      ws.config,
      "--from",
      "2026-10-01",
      "--to",
      "2026-10-31",
      "--out",
      out,
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`history chain intact (6 rows, head ${head})`);
    const stem = join(out, "compliance-2026-10-01_2026-10-31");
    for (const f of [".pdf", "-drills.csv", "-violations.csv", "-coverage.csv", ".json"])
      expect(existsSync(stem + f), f).toBe(true);

    const pdf = execFileSync("pdftotext", [`${stem}.pdf`, "-"], { encoding: "utf8" }).replace(/\s+/g, " ");
    for (const s of [
      "ACME Corp",
      "Backup compliance report",
      "Period 2026-10-01 00:00 UTC to 2026-10-31 23:59 UTC",
      "intact: 6 rows verified",
      head,
      "good/app",
      "FAIL",
      "no passing restore drill of good/app for 8d",
    ]) {
      expect(pdf).toContain(s);
    }
    const drillsCsv = readFileSync(`${stem}-drills.csv`, "utf8").trim().split("\n");
    expect(drillsCsv[0]).toBe(
      '"recordedAt","source","series","backupId","backupCreatedAt","sizeBytes","verdict","totalMs","measuredRpoSeconds","checks","reason","evidence"',
    );
    expect(drillsCsv).toHaveLength(1 + 4);
    const violationsCsv = readFileSync(`${stem}-violations.csv`, "utf8").trim().split("\n");
    expect(violationsCsv).toHaveLength(2); // one condition, seen by two runs
    expect(violationsCsv[1]).toContain('"verify_every","warning"');
    expect(violationsCsv[1]).toMatch(/,2$/);
    const doc = JSON.parse(readFileSync(`${stem}.json`, "utf8"));
    expect(doc.chain).toMatchObject({ ok: true, rows: 6, head });
    expect(doc.coverage[0]).toMatchObject({ source: "good", series: "app", drills: 4, pass: 3, fail: 1 });
  });

  it("a period without drills says NO EVIDENCE on the cover and for the series, never PASS", async () => {
    const ws = config("{ rpo: 26h, rto: 30m, verify_every: 7d }");
    writeHistory(join(ws.dir, "reports", "history.csv"));
    const out = join(ws.dir, "export-empty");
    const r = await attest([
      "report",
      "--config",
      ws.config,
      "--from",
      "2025-01-01",
      "--to",
      "2025-01-31",
      "--out",
      out,
      "--json",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.status).toBe("no-evidence");
    const pdf = execFileSync("pdftotext", [join(out, "compliance-2025-01-01_2025-01-31.pdf"), "-"], {
      encoding: "utf8",
    }).replace(/\s+/g, " ");
    expect(pdf).toContain("no restore drill proves the backups of the period NO EVIDENCE");
    expect(pdf).toContain("good NO EVIDENCE");
    expect(pdf).toContain(
      "NO EVIDENCE good: no restore drill in the period, although a target asks for verification",
    );
    expect(pdf).toContain("never - n/v n/v n/a n/v");
    expect(pdf).not.toContain("PASS");
    expect(pdf).not.toMatch(/\bOK\b/);
  });

  it("a broken chain is stated on the cover, the export is still written, exit 1", async () => {
    const ws = config("{ rpo: 26h }");
    const csv = join(ws.dir, "reports", "history.csv");
    writeHistory(csv);
    writeFileSync(csv, readFileSync(csv, "utf8").replace("audit-2", "audit-9"));
    const out = join(ws.dir, "export");
    const r = await attest([
      "report",
      "--config",
      ws.config,
      "--from",
      "2026-10-01",
      "--to",
      "2026-11-30",
      "--out",
      out,
      "--format",
      "pdf,json",
      "--json",
    ]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.chain.ok).toBe(false);
    expect(doc.files).toHaveLength(2);
    const pdf = execFileSync("pdftotext", [doc.files[0], "-"], { encoding: "utf8" }).replace(/\s+/g, " ");
    expect(pdf).toContain("BROKEN: row 2 (drill audit-9): content does not match its hash");
    expect(pdf).toContain("The history file failed verification");
  });

  it("bad dates or formats are usage errors (exit 2)", async () => {
    const ws = config("{ rpo: 26h }");
    const bad = await attest(["report", "--config", ws.config, "--from", "2026-13-01", "--to", "2026-10-31"]);
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toContain("--from 2026-13-01 is not a date");
    const order = await attest([
      "report",
      "--config",
      ws.config,
      "--from",
      "2026-11-01",
      "--to",
      "2026-10-01",
    ]);
    expect(order.code).toBe(2);
    const fmt = await attest([
      "report",
      "--config",
      ws.config,
      "--from",
      "2026-10-01",
      "--to",
      "2026-10-31",
      "--format",
      "pdf,xls",
    ]);
    expect(fmt.code).toBe(2);
    expect(fmt.stderr).toContain("--format takes pdf,csv,json (got pdf,xls)");
  });
});
