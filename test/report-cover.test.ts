/** What a report may claim: the cover status, per-series states, "Needs attention" and coverage. */
import { describe, expect, it } from "vitest";
import { coverStatus, type SeriesEvidence, seriesReportStatus } from "../src/report/cover-status.js";
import { exportModel } from "../src/report/export-model.js";
import { ago, backup, DAY, HOUR, historyDrill, NOW } from "./report-fixtures.js";
import { sampleWorkspace } from "./report-sample.js";

const ev = (over: Partial<SeriesEvidence>): SeriesEvidence => ({
  source: "s",
  series: "a",
  needsVerification: true,
  verdicts: ["pass"],
  violations: [],
  ...over,
});

describe("cover status", () => {
  const cover = (series: SeriesEvidence[], chainOk = true, violations: Array<"warning" | "critical"> = []) =>
    coverStatus({ series, chainOk, violations });

  it("PASS only when something was drilled and nothing contradicts it", () => {
    expect(cover([ev({})])).toBe("pass");
    expect(cover([ev({ verdicts: ["pass", "warn"] })])).toBe("warn");
    expect(cover([ev({})], true, ["warning"])).toBe("warn");
  });

  it("a series with a target and no drill in the period is NO EVIDENCE, and so is the cover", () => {
    const none = ev({ series: "b", verdicts: [] });
    expect(seriesReportStatus(none)).toBe("no-evidence");
    expect(cover([ev({}), none])).toBe("no-evidence");
  });

  it("a series without a target and without a drill claims nothing; a period without any drill is NO EVIDENCE", () => {
    const free = ev({ series: "b", verdicts: [], needsVerification: false });
    expect(seriesReportStatus(free)).toBeUndefined();
    expect(cover([ev({}), free])).toBe("pass");
    expect(cover([free])).toBe("no-evidence");
    expect(cover([])).toBe("no-evidence");
  });

  it("FAIL beats ERROR beats NO EVIDENCE", () => {
    const none = ev({ series: "b", verdicts: [] });
    expect(cover([none, ev({ verdicts: ["error"] })])).toBe("error");
    expect(cover([none], false)).toBe("error");
    expect(cover([none, ev({ verdicts: ["pass", "fail"] })], false)).toBe("fail");
    expect(cover([ev({})], true, ["critical"])).toBe("fail");
  });
});

describe("export model", () => {
  const ws = sampleWorkspace("");
  const from = new Date("2025-03-01T00:00:00Z");
  const to = new Date("2025-03-10T23:59:59Z");
  // crm fails every drill; app passes; both sources ask for verification (verify_every: 7d)
  const crm = [6, 4, 2].map((d) => backup("crm-dumps", "crm", d * DAY + 5 * HOUR));
  const app = backup("app-dumps", "app", 2 * DAY + 5 * HOUR);
  const history = [
    historyDrill(crm[0]!, ago(6 * DAY), "fail"),
    historyDrill(crm[1]!, ago(4 * DAY), "fail"),
    historyDrill(app, ago(2 * DAY)),
    historyDrill(crm[2]!, ago(2 * DAY), "fail"),
  ];
  const model = exportModel({
    config: ws.config,
    history,
    chain: { ok: true, rows: 4, head: "h" },
    from,
    to,
    now: NOW,
  });

  it("a series whose every drill failed is never OK on any rule", () => {
    const row = model.summary.find((s) => s.series === "crm")!;
    expect(row.lastVerifiedAt).toBeUndefined();
    expect([row.rpo, row.rto, row.retention, row.other]).not.toContain("ok");
    const good = model.summary.find((s) => s.series === "app")!;
    expect(good.rto).toBe("ok");
  });

  it("lists each problem once, with its first and last time", () => {
    expect(model.status).toBe("fail");
    expect(model.attention).toHaveLength(1);
    expect(model.attention[0]).toMatchObject({
      tag: "FAIL",
      count: 3,
      first: ago(6 * DAY),
      last: ago(2 * DAY),
    });
    expect(model.attention[0]!.text).toContain("drill of crm-dumps/crm failed 3 times");
  });

  it("longest unverified counts from when the series was first seen, not from the period's start", () => {
    const cov = model.coverage!.find((c) => c.series === "crm")!;
    // first seen 6 days before NOW, never passed: until the end of the period (NOW, the report's clock)
    expect(cov.longestUnverifiedMs).toBe(6 * DAY);
  });

  it("drill rows carry their run id", () => {
    expect(model.drillRows.map((d) => d.runId)).toEqual(history.map((r) => r.runId));
  });

  it("a period without drills is NO EVIDENCE for every series with a target", () => {
    const empty = exportModel({
      config: ws.config,
      history,
      chain: { ok: true, rows: 4, head: "h" },
      from: new Date("2025-01-01T00:00:00Z"),
      to: new Date("2025-01-31T23:59:59Z"),
      now: NOW,
    });
    expect(empty.status).toBe("no-evidence");
    expect(empty.scope.map((s) => [s.source, s.status])).toEqual([
      ["app-dumps", "no-evidence"],
      ["crm-dumps", "no-evidence"],
    ]);
    expect(empty.attention.map((a) => a.tag)).toEqual(["NO EVIDENCE", "NO EVIDENCE"]);
  });
});
