/** The Nagios status and perfdata of `attest check`: the status and the perfdata's own thresholds agree. */
import { describe, expect, it } from "vitest";
import type { Violation } from "../src/model.js";
import { evaluatePolicies } from "../src/policy/evaluate.js";
import { verifiedRpoTarget } from "../src/policy/rpo.js";
import { seriesStatuses } from "../src/policy/series-status.js";
import { NAGIOS, nagiosLine, nagiosStatus } from "../src/report/nagios.js";
import { ago, DAY, daily, HOUR, historyDrill, input, NOW } from "./report-fixtures.js";

/** Whether `value` alerts against a plugin range (`N` → outside 0..N, `N:` → below N, `a:b`, `~:b`, `@` inverts). */
function alerts(value: number, range: string): boolean {
  if (range === "") return false;
  const inside = range.startsWith("@");
  const r = inside ? range.slice(1) : range;
  const [lo, hi] = r.includes(":") ? r.split(":") : ["0", r];
  const min = lo === "~" ? Number.NEGATIVE_INFINITY : Number(lo);
  const max = hi === "" || hi === undefined ? Number.POSITIVE_INFINITY : Number(hi);
  const within = value >= min && value <= max;
  return inside ? within : !within;
}

/** The worst state the perfdata's own thresholds give: 0 OK, 1 WARNING, 2 CRITICAL. */
function perfState(line: string): number {
  const perf = line.split(" | ")[1] ?? "";
  let worst = 0;
  for (const item of perf.split(" ")) {
    const [, value = "", warn = "", crit = ""] = /^[^=]+=([-\d.]+)[a-z%]*;([^;]*);([^;]*)/.exec(item) ?? [];
    const v = Number(value);
    if (alerts(v, crit)) worst = 2;
    else if (alerts(v, warn)) worst = Math.max(worst, 1);
  }
  return worst;
}

const S = "app-dumps";
const critical: Violation = { source: S, series: "app", rule: "rpo", severity: "critical", message: "old" };
const warning: Violation = { ...critical, rule: "retention", severity: "warning", message: "few" };

describe("nagios status", () => {
  const base = { violations: [], problems: [], chain: { ok: true } };
  it("CRITICAL beats UNKNOWN beats WARNING beats OK; a broken chain is CRITICAL", () => {
    expect(nagiosStatus(base)).toBe(NAGIOS.ok);
    expect(nagiosStatus({ ...base, violations: [warning] })).toBe(NAGIOS.warning);
    const problem = { source: S, kind: "list_failed", severity: "critical" as const, message: "x" };
    expect(nagiosStatus({ ...base, violations: [warning], problems: [problem] })).toBe(NAGIOS.unknown);
    expect(nagiosStatus({ ...base, violations: [warning, critical], problems: [problem] })).toBe(
      NAGIOS.critical,
    );
    expect(nagiosStatus({ ...base, chain: { ok: false, problem: "row 3 edited" } })).toBe(NAGIOS.critical);
  });
});

describe("nagios perfdata agrees with the status", () => {
  const line = (
    backups: ReturnType<typeof daily>,
    history: ReturnType<typeof historyDrill>[],
    policies: Parameters<typeof input>[0],
    chain = { ok: true },
  ) => {
    const pin = input(policies, backups, { history });
    const violations = evaluatePolicies(pin);
    return nagiosLine({
      violations,
      statuses: seriesStatuses(pin, violations),
      problems: [],
      now: NOW,
      chain,
      verifiedTarget: () => verifiedRpoTarget(policies),
    });
  };
  const backups = daily(S, "app", 5, HOUR);
  const cases = [
    ["all good", [historyDrill(backups[4]!, ago(HOUR))], { rpo: 26 * HOUR, rto: 30 * 60_000 }, NAGIOS.ok],
    [
      "newest drill failed",
      [historyDrill(backups[3]!, ago(DAY)), historyDrill(backups[4]!, ago(HOUR), "fail")],
      { verify_every: 7 * DAY },
      NAGIOS.critical,
    ],
    [
      "newest drill errored",
      [historyDrill(backups[3]!, ago(DAY)), historyDrill(backups[4]!, ago(HOUR), "error")],
      { verify_every: 7 * DAY },
      NAGIOS.warning,
    ],
    [
      "newest verified backup older than its target",
      [historyDrill(backups[0]!, ago(HOUR))],
      { rpo: 26 * HOUR, rpo_verified: 2 * DAY },
      NAGIOS.warning,
    ],
    [
      "an old backup drilled last does not hide the newer one already proven",
      [historyDrill(backups[4]!, ago(2 * DAY)), historyDrill(backups[0]!, ago(HOUR))],
      { rpo: 26 * HOUR, rpo_verified: 2 * DAY },
      NAGIOS.ok,
    ],
    ["backup too old", [historyDrill(backups[4]!, ago(HOUR))], { rpo: 30 * 60_000 }, NAGIOS.critical],
    [
      "restore too slow",
      [historyDrill(backups[4]!, ago(HOUR), "pass", 3 * HOUR)],
      { rto: HOUR },
      NAGIOS.critical,
    ],
  ] as const;
  for (const [name, history, policies, want] of cases) {
    it(name, () => {
      const { line: text, code } = line(backups, [...history], policies);
      expect(code, text).toBe(want);
      expect(perfState(text), text).toBe(want);
    });
  }

  it("one critical violation is critical by its own threshold (range 0)", () => {
    const { line: text } = line(backups, [historyDrill(backups[4]!, ago(HOUR))], { rpo: 30 * 60_000 });
    expect(text).toContain(" violations_critical=1;;0;0 ");
    expect(alerts(1, "0")).toBe(true);
    expect(alerts(0, "0")).toBe(false);
  });

  it("a broken chain is critical in the status and in the perfdata", () => {
    const { line: text, code } = line(backups, [historyDrill(backups[4]!, ago(HOUR))], {}, {
      ok: false,
      problem: "row 2 edited",
    } as { ok: boolean });
    expect(code).toBe(NAGIOS.critical);
    expect(text).toMatch(
      /^ATTEST CRITICAL - history chain broken: history chain does not verify: row 2 edited \|/,
    );
    expect(perfState(text)).toBe(NAGIOS.critical);
  });
});
