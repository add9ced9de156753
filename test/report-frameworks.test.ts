/**
 * Control mapping: `attest report --framework` adds a section per control, judged from the
 * period's evidence (met / not met / no evidence), its rows traced back to the history file,
 * in the PDF (read back with pdftotext) and the JSON export.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FRAMEWORK_IDS } from "../src/evidence/evidence-config.js";
import { recordsOfRun } from "../src/history/history-record.js";
import { HistoryStore } from "../src/history/history-store.js";
import type { RunResult, Verdict } from "../src/model.js";
import { combineStatus, framework } from "../src/report/frameworks/control-mapping.js";
import { rowRanges } from "../src/report/frameworks/control-section.js";
import { backup, DAY, drill } from "./report-fixtures.js";
import { attest, DUMPS, workspace } from "./support/cli.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup(extra = "") {
  const ws = workspace(
    (dir) => `organization: { name: ACME Corp }
policies: { rpo: 3650d, rto: 30m, verify_every: 7d }
sources:
  - name: good
    type: dump-dir
    path: ${join(DUMPS, "good")}
    include: ["app_20261120T0300.dump"]
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
${extra}`,
  );
  dirs.push(ws.dir);
  return ws;
}

/** Weekly audits of good/app in October 2026, each one drill; a failed one adds a violation row. */
function writeHistory(csv: string, verdicts: Verdict[]): HistoryStore {
  const store = new HistoryStore(csv);
  for (const [i, verdict] of verdicts.entries()) {
    const at = new Date(Date.parse("2026-10-01T08:00:00Z") + (i + 1) * 7 * DAY);
    const b = {
      ...backup("good", "app", 0),
      id: `app_${at.toISOString().slice(0, 10)}.dump`,
      createdAt: new Date(at.getTime() - 5 * 3_600_000).toISOString(),
    };
    const run: RunResult = {
      run: { id: `audit-${i + 1}`, kind: "audit", startedAt: at.toISOString(), finishedAt: at.toISOString() },
      status: verdict,
      drills: [drill(b, verdict, 12 * 60_000)],
      violations:
        verdict === "fail"
          ? [
              {
                source: "good",
                series: "app",
                rule: "last_drill",
                severity: "critical",
                message: "the newest restore drill of good/app FAILED",
              },
            ]
          : [],
    };
    store.append(recordsOfRun(run, at.toISOString()));
  }
  return store;
}

interface ControlDoc {
  id: string;
  status: string;
  rows: number[];
  evidence: Array<{ kind: string; status: string; rows: number[]; detail: string }>;
}
interface ExportDoc {
  controls: Array<{ id: string; name: string; controls: ControlDoc[] }>;
}

async function exportWith(ws: { dir: string; config: string }, from: string, to: string, extra: string[]) {
  const out = join(ws.dir, `export-${from}-${extra.join("")}`);
  const r = await attest([
    "report",
    "--config",
    ws.config,
    "--from",
    from,
    "--to",
    to,
    "--out",
    out,
    ...extra,
  ]);
  const stem = `compliance-${from}_${to}`;
  const doc = JSON.parse(readFileSync(join(out, `${stem}.json`), "utf8")) as ExportDoc;
  const text = execFileSync("pdftotext", ["-layout", join(out, `${stem}.pdf`), "-"], { encoding: "utf8" });
  return { r, doc, text, flat: text.replace(/\s+/g, " ") };
}

const control = (doc: ExportDoc, fw: string, id: string) =>
  doc.controls.find((f) => f.id === fw)!.controls.find((c) => c.id === id)!;

describe("attest report --framework", () => {
  it("a period with passing drills: the controls they answer are MET, their rows are the drill rows", async () => {
    const ws = setup();
    const store = writeHistory(join(ws.dir, "reports", "history.csv"), ["pass", "pass", "pass", "pass"]);
    const history = store.read();
    const drillRows = history.flatMap((r, i) => (r.recordType === "drill" ? [i + 1] : []));
    expect(drillRows).toEqual([1, 2, 3, 4]);

    const { r, doc, flat } = await exportWith(ws, "2026-10-01", "2026-10-31", [
      "--framework",
      "soc2,nist-800-53,iso27001,hipaa,dora",
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(doc.controls.map((f) => f.id)).toEqual(["soc2", "nist-800-53", "iso27001", "hipaa", "dora"]);

    // SOC 2 A1.3 (testing recovery): drills, restores, RTO, coverage, chain all hold
    const a13 = control(doc, "soc2", "A1.3");
    expect(a13.evidence.map((e) => [e.kind, e.status])).toEqual([
      ["drills", "met"],
      ["restorable", "met"],
      ["rto", "met"],
      ["coverage", "met"],
      ["chain", "met"],
    ]);
    expect(a13.status).toBe("met");
    expect(a13.rows).toEqual(drillRows);
    // NIST CP-10 rests on restores and RPO/RTO targets, all configured
    expect(control(doc, "nist-800-53", "CP-10").status).toBe("met");
    // no retention target is configured: the controls that need one have no evidence for it
    const a813 = control(doc, "iso27001", "A.8.13");
    expect(a813.evidence.find((e) => e.kind === "retention")).toMatchObject({
      status: "no-evidence",
      detail: "no retention target is configured",
    });
    expect(a813.status).toBe("no-evidence");

    // the PDF says the same, control by control
    expect(flat).toContain("Control mapping");
    expect(flat).toContain("SOC 2 Trust Services Criteria (Availability)");
    expect(flat).toMatch(/A1\.3 Recovery plan testing .*Status MET History rows 1-4/);
    expect(flat).toMatch(/CP-10 System recovery and reconstitution .*Status MET/);
    expect(flat).toMatch(/A\.8\.13 Information backup .*Status NO EVIDENCE/);
    expect(flat).toMatch(/164\.308\(a\)\(7\)\(ii\)\(D\) Testing and revision procedures/);
    expect(flat).toContain("Art. 12 Backup policies, restoration and recovery");
    expect(flat).toMatch(/RTO against target MET RTO met for 1 series 1-4/);
  });

  it("a period without drills: NO EVIDENCE; a failed newest drill: NOT MET, traced to its row", async () => {
    const ws = setup("evidence: { frameworks: [soc2] }\n");
    writeHistory(join(ws.dir, "reports", "history.csv"), ["pass", "pass", "fail"]);

    // September: nothing ran (the default --framework comes from the config)
    const sept = await exportWith(ws, "2026-09-01", "2026-09-30", []);
    expect(sept.doc.controls.map((f) => f.id)).toEqual(["soc2"]);
    for (const c of sept.doc.controls[0]!.controls) {
      expect(c.status).toBe("no-evidence");
      expect(c.rows).toEqual([]);
    }
    expect(sept.flat).toMatch(/A1\.2 Backup and recovery infrastructure .*Status NO EVIDENCE History rows -/);
    expect(sept.flat).toContain("no restore drill ran in the period");

    // October: the newest drill failed (row 3; its violation is row 4)
    const oct = await exportWith(ws, "2026-10-01", "2026-10-31", []);
    const a12 = control(oct.doc, "soc2", "A1.2");
    expect(a12.status).toBe("not-met");
    expect(a12.evidence.find((e) => e.kind === "restorable")).toMatchObject({
      status: "not-met",
      detail: "newest drill FAILED for good/app",
      rows: [3],
    });
    expect(oct.flat).toMatch(/A1\.2 Backup and recovery infrastructure .*Status NOT MET/);
    expect(oct.flat).toContain("newest drill FAILED for good/app");
  });

  it("an unknown framework is bad usage", async () => {
    const ws = setup();
    const r = await attest([
      "report",
      "--config",
      ws.config,
      "--from",
      "2026-10-01",
      "--to",
      "2026-10-31",
      "--framework",
      "pci",
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--framework takes iso27001,soc2,nist-800-53,hipaa,dora (got pci)");
  });

  it("the framework files: every control has an id, a summary and known evidence kinds", () => {
    const ids = FRAMEWORK_IDS.flatMap((f) => framework(f).controls.map((c) => c.id));
    expect(ids).toEqual([
      "A.8.13",
      "A.5.30",
      "A1.2",
      "A1.3",
      "CP-4",
      "CP-9",
      "CP-9(1)",
      "CP-10",
      "164.308(a)(7)(ii)(A)",
      "164.308(a)(7)(ii)(D)",
      "Art. 12",
    ]);
    for (const f of FRAMEWORK_IDS)
      for (const c of framework(f).controls) expect(c.asks.length).toBeGreaterThan(20);
    expect(combineStatus(["met", "no-evidence", "not-met"])).toBe("not-met");
    expect(combineStatus(["met", "no-evidence"])).toBe("no-evidence");
    expect(combineStatus(["met", "met"])).toBe("met");
    expect(rowRanges([1, 2, 3, 7, 9, 10])).toBe("1-3, 7, 9-10");
  });
});
