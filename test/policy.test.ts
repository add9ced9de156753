/** Policy rules with a fixed clock and constructed inventories and histories. */
import { describe, expect, it } from "vitest";
import { policiesFor } from "../src/audit/inventory.js";
import type { Config } from "../src/config/schema.js";
import { evaluatePolicies } from "../src/policy/evaluate.js";
import { violationKey } from "../src/policy/violation-key.js";
import {
  ago,
  backup,
  DAY,
  daily,
  drill,
  HOUR,
  historyDrill,
  input,
  NOW,
  sourceConfig,
} from "./report-fixtures.js";

const S = "app-dumps";
const rules = (vs: { rule: string; evidence?: Record<string, unknown> }[]) =>
  vs.map((v) => `${v.rule}:${String(v.evidence?.aspect ?? "")}`).sort();

describe("edge cases", () => {
  it("a source with no backups at all is critical", () => {
    const vs = evaluatePolicies(input({ rpo: 26 * HOUR }, []));
    expect(vs).toHaveLength(1);
    expect(vs[0]).toMatchObject({ source: S, rule: "rpo", severity: "critical" });
    expect(vs[0]!.message).toBe("source app-dumps has no backups at all");
  });

  it("a source that could not be listed is not reported as empty (its finding says why)", () => {
    const findings = [
      {
        source: S,
        kind: "list_failed",
        severity: "critical" as const,
        message: "cannot list source app-dumps: EACCES",
      },
    ];
    expect(evaluatePolicies(input({ rpo: 26 * HOUR }, [], { findings }))).toEqual([]);
  });

  it("one fresh backup with no targets configured raises nothing", () => {
    expect(evaluatePolicies(input({}, [backup(S, "app", HOUR)]))).toEqual([]);
  });

  it("one backup: retention count and window not met, no size anomaly without a median", () => {
    const vs = evaluatePolicies(
      input({ rpo: 26 * HOUR, retention: { min_count: 7, min_days: 7 } }, [backup(S, "app", HOUR)]),
    );
    expect(rules(vs)).toEqual(["retention:min_count", "retention:min_days"]);
    expect(vs.find((v) => v.evidence?.aspect === "min_count")!.message).toBe(
      "app-dumps/app keeps 1 backup; the retention policy requires at least 7 (min_count)",
    );
  });

  it("a backup from the future is reported as clock skew and does not count as fresh", () => {
    const old = backup(S, "app", 30 * HOUR);
    const future = backup(S, "app", -3 * HOUR);
    const vs = evaluatePolicies(input({ rpo: 26 * HOUR }, [old, future]));
    expect(rules(vs)).toEqual(["clock_skew:future", "rpo:newest"]);
    const skew = vs.find((v) => v.rule === "clock_skew")!;
    expect(skew.severity).toBe("warning");
    expect(skew.message).toContain("dated in the future");
    expect(skew.message).toContain("3h ahead");
    expect(vs.find((v) => v.rule === "rpo")!.evidence?.backupId).toBe(old.id);
  });

  it("a few minutes of clock skew is tolerated: the backup counts as brand new", () => {
    const vs = evaluatePolicies(
      input({ rpo: 26 * HOUR }, [backup(S, "app", 30 * HOUR), backup(S, "app", -2 * 60_000)]),
    );
    expect(vs).toEqual([]);
  });

  it("backups with an unparseable time are ignored, not fatal", () => {
    const vs = evaluatePolicies(
      input({ rpo: 26 * HOUR }, [backup(S, "app", HOUR), backup(S, "app", 0, { createdAt: "garbage" })]),
    );
    expect(vs).toEqual([]);
  });
});

describe("rpo", () => {
  it("newest backup older than the target is critical, with since = taken + target", () => {
    const b = backup(S, "app", 27 * HOUR);
    const [v, ...rest] = evaluatePolicies(input({ rpo: 26 * HOUR }, [b]));
    expect(rest).toEqual([]);
    expect(v).toMatchObject({
      source: S,
      series: "app",
      rule: "rpo",
      severity: "critical",
      since: ago(HOUR),
    });
    expect(v!.message).toBe(
      `newest backup of app-dumps/app is 1d 3h old (${b.id}, taken ${b.createdAt.slice(0, 16).replace("T", " ")} UTC); the RPO target is 1d 2h`,
    );
    expect(v!.evidence).toMatchObject({ ageSeconds: 27 * 3600, targetSeconds: 26 * 3600 });
  });

  it("rules apply per series: a stale database next to a fresh one", () => {
    const vs = evaluatePolicies(
      input({ rpo: 26 * HOUR }, [backup(S, "app", HOUR), backup(S, "billing", 50 * HOUR)]),
    );
    expect(vs.map((v) => [v.series, v.rule])).toEqual([["billing", "rpo"]]);
  });

  it("a source's override replaces the default", () => {
    const config = {
      policies: { rpo: 26 * HOUR, retention: { min_count: 7, max_days: 35 } },
    } as unknown as Config;
    const merged = policiesFor(config, sourceConfig(S, { rpo: 72 * HOUR, retention: { min_count: 1 } }));
    expect(merged).toEqual({ rpo: 72 * HOUR, retention: { min_count: 1, max_days: 35 } });
    expect(evaluatePolicies(input(merged, [backup(S, "app", 50 * HOUR)]))).toEqual([]);
  });

  it("the newest backup proven restorable is held to rpo + verify_every", () => {
    const backups = daily(S, "app", 12, HOUR);
    const proven = backups[0]!; // 11 days old
    const history = [
      historyDrill(proven, ago(11 * DAY - 2 * HOUR)),
      historyDrill(backups[3]!, ago(7 * DAY), "fail"),
    ];
    const vs = evaluatePolicies(input({ rpo: 26 * HOUR, verify_every: 7 * DAY }, backups, { history }));
    const v = vs.find((x) => x.evidence?.aspect === "verified")!;
    expect(v.severity).toBe("warning");
    expect(v.message).toContain(
      `newest backup of app-dumps/app proven restorable by a drill is 11d 1h old (${proven.id}`,
    );
    expect(v.message).toContain("the target for verified backups is 8d 2h");
    // verify_every reports the missing recent pass too, and the newest drill failed
    expect(rules(vs)).toEqual(["last_drill:fail", "rpo:verified", "verify_every:coverage"]);
  });

  it("a passing drill in this run proves the newest backup", () => {
    const backups = daily(S, "app", 3, HOUR);
    const vs = evaluatePolicies(
      input({ rpo: 26 * HOUR, verify_every: 7 * DAY }, backups, { drills: [drill(backups[2]!)] }),
    );
    expect(vs).toEqual([]);
  });

  it("with rpo_verified and without verify_every, never verified is an rpo warning", () => {
    const vs = evaluatePolicies(input({ rpo: 26 * HOUR }, [backup(S, "app", HOUR)]));
    expect(vs).toEqual([]); // rpo alone asks nothing about verification
    const vs2 = evaluatePolicies(
      input({ rpo: 26 * HOUR, rpo_verified: 48 * HOUR }, [backup(S, "app", HOUR)]),
    );
    expect(vs2.map((v) => v.message)).toEqual([
      "no backup of app-dumps/app has been proven restorable by a passing drill yet",
    ]);
  });

  it("the measured RPO of the newest drill is compared with the target", () => {
    const b = backup(S, "app", HOUR);
    const vs = evaluatePolicies(
      input({ rpo: 26 * HOUR }, [b], {
        drills: [drill(b, "pass", 60_000, { measuredRpoSeconds: 30 * 3600 })],
      }),
    );
    expect(vs).toHaveLength(1);
    expect(vs[0]).toMatchObject({
      rule: "rpo",
      severity: "warning",
      evidence: { aspect: "measured", measuredRpoSeconds: 108000 },
    });
    expect(vs[0]!.message).toContain("measured RPO of app-dumps/app is 1d 6h");
  });
});

describe("rto", () => {
  it("a drill slower than the target is critical", () => {
    const b = backup(S, "app", HOUR);
    const vs = evaluatePolicies(
      input({ rto: 30 * 60_000 }, [b], { drills: [drill(b, "pass", 41 * 60_000 + 10_000)] }),
    );
    expect(vs).toHaveLength(1);
    expect(vs[0]).toMatchObject({ rule: "rto", severity: "critical", since: NOW.toISOString() });
    expect(vs[0]!.message).toBe(
      `restore drill of app-dumps/app (${b.id}) took 41m 10s; the RTO target is 30m`,
    );
  });

  it("a failed drill's duration is no restore time", () => {
    const b = backup(S, "app", HOUR);
    expect(
      evaluatePolicies(input({ rto: 30 * 60_000 }, [b], { drills: [drill(b, "fail", 99 * 60_000)] })),
    ).toEqual([]);
  });

  it("the last drill in history counts when this run drilled nothing (check)", () => {
    const b = backup(S, "app", 2 * DAY);
    const vs = evaluatePolicies(
      input({ rto: 30 * 60_000 }, [b], { history: [historyDrill(b, ago(DAY), "pass", 45 * 60_000)] }),
    );
    expect(vs.map((v) => v.rule)).toEqual(["rto"]);
    expect(vs[0]!.since).toBe(ago(DAY));
  });

  it("forecasts the day a growing restore time crosses the target", () => {
    // weekly drills, restore time +2 min per week, same backup size: the time model applies
    const backups = daily(S, "app", 8, HOUR);
    const history = [0, 1, 2, 3, 4].map((i) =>
      historyDrill(backups[0]!, ago((5 - i) * 7 * DAY), "pass", (12 + 2 * i) * 60_000),
    );
    const vs = evaluatePolicies(input({ rto: 30 * 60_000 }, backups, { history }));
    expect(vs).toHaveLength(1);
    const v = vs[0]!;
    expect(v).toMatchObject({
      rule: "rto",
      severity: "warning",
      evidence: { aspect: "forecast", model: "time" },
    });
    // line: 12 min at -35 d, +2 min/7 d → 30 min at +28 d from now
    expect(v.evidence?.days).toBe(28);
    expect(v.message).toMatch(/^at the current growth RTO of app-dumps\/app exceeds 30m in about 28 days/);
  });

  it("forecasts from backup growth when restore time follows size", () => {
    // size grows 10 MiB/day; restore takes 1 s per MiB + 60 s
    const mib = 1024 * 1024;
    const backups = daily(S, "app", 30, HOUR, (i) => (500 + 10 * i) * mib);
    const history = [5, 12, 19, 26].map((i) =>
      historyDrill(backups[i]!, ago((29 - i) * DAY), "pass", (60 + 500 + 10 * i) * 1000),
    );
    const policies = { rto: 30 * 60_000, rto_forecast: { enabled: true, horizon: 120 * DAY, min_points: 4 } };
    const vs = evaluatePolicies(input(policies, backups, { history }));
    expect(vs).toHaveLength(1);
    expect(vs[0]!.evidence).toMatchObject({ aspect: "forecast", model: "size" });
    // 1800 s = 60 + size_MiB → size 1740 MiB; size now ≈ 790 MiB, +10 MiB/day → 95 days
    expect(vs[0]!.evidence?.days).toBe(95);
    expect(vs[0]!.message).toContain("exceeds 30m in about 95 days");
    // the default horizon (90 days) does not reach that far
    expect(evaluatePolicies(input({ rto: 30 * 60_000 }, backups, { history }))).toEqual([]);
  });

  it("a forecast beyond the horizon stays quiet", () => {
    const backups = daily(S, "app", 8, HOUR);
    const history = [0, 1, 2, 3].map((i) =>
      historyDrill(backups[0]!, ago((4 - i) * 7 * DAY), "pass", (10 + i / 10) * 60_000),
    );
    expect(evaluatePolicies(input({ rto: 30 * 60_000 }, backups, { history }))).toEqual([]);
  });

  it("a shrinking database forecasts nothing, though drills of older, larger backups got slower", () => {
    const mib = 1024 * 1024;
    const backups = daily(S, "app", 10, HOUR, (i) => (900 - 10 * i) * mib);
    // drills walk back to older (larger) backups: restore time rises over time, size explains it
    const history = [3, 2, 1, 0].map((i, k) =>
      historyDrill(backups[i]!, ago((6 - 2 * k) * DAY), "pass", (60 + 900 - 10 * i) * 1000),
    );
    expect(evaluatePolicies(input({ rto: 1000_000 }, backups, { history }))).toEqual([]);
    // without sizes the time trend alone would warn
    const unsized = history.map((r) => ({ ...r, sizeBytes: "" }));
    expect(
      evaluatePolicies(input({ rto: 1000_000 }, backups, { history: unsized })).map((v) => v.evidence?.model),
    ).toEqual(["time"]);
  });
});

describe("retention", () => {
  it("backups older than max_days must be gone: critical, listing them", () => {
    const backups = daily(S, "app", 40, HOUR);
    const vs = evaluatePolicies(input({ retention: { min_count: 7, min_days: 7, max_days: 35 } }, backups));
    expect(vs).toHaveLength(1);
    expect(vs[0]).toMatchObject({
      rule: "retention",
      severity: "critical",
      evidence: { aspect: "max_days", count: 5 },
    });
    expect(vs[0]!.message).toMatch(
      /^5 backups of app-dumps\/app are older than 35 days and should have been deleted \(oldest: app-/,
    );
    expect(vs[0]!.since).toBe(new Date(Date.parse(backups[0]!.createdAt) + 35 * DAY).toISOString());
  });

  it("the recovery window needs a backup at or before its start", () => {
    const vs = evaluatePolicies(input({ retention: { min_days: 7 } }, daily(S, "app", 5, HOUR)));
    expect(rules(vs)).toEqual(["retention:min_days"]);
    expect(vs[0]!.message).toContain(
      "a recovery window of 7 days needs one taken on or before 2025-03-03 12:00 UTC",
    );
    expect(evaluatePolicies(input({ retention: { min_days: 7 } }, daily(S, "app", 8, HOUR)))).toEqual([]);
  });
});

describe("max_gap", () => {
  it("reports gaps between consecutive backups and the open gap to now", () => {
    const backups = [
      backup(S, "app", 10 * DAY),
      backup(S, "app", 9 * DAY),
      backup(S, "app", 5 * DAY),
      backup(S, "app", 4 * DAY),
    ];
    const vs = evaluatePolicies(input({ max_gap: 26 * HOUR }, backups));
    expect(rules(vs)).toEqual(["max_gap:between", "max_gap:open"]);
    expect(vs.find((v) => v.evidence?.aspect === "between")!.message).toBe(
      "1 gap longer than 1d 2h between backups of app-dumps/app; the longest is 4d (2025-03-01 12:00 UTC to 2025-03-05 12:00 UTC)",
    );
    expect(vs.find((v) => v.evidence?.aspect === "open")!.since).toBe(ago(4 * DAY - 26 * HOUR));
  });
});

describe("verify_every", () => {
  it("never verified, with the failed attempt named", () => {
    const backups = daily(S, "app", 3, HOUR);
    const vs = evaluatePolicies(
      input({ verify_every: 7 * DAY }, backups, { drills: [drill(backups[2]!, "fail")] }),
    );
    expect(vs.map((v) => v.message)).toEqual([
      "app-dumps/app has never been verified by a passing restore drill (last drill: fail on 2025-03-10 12:00 UTC); the policy asks for one every 7d",
    ]);
  });

  it("never verified is critical once the series is older than the period, a warning before", () => {
    const young = evaluatePolicies(input({ verify_every: 7 * DAY }, daily(S, "app", 3, HOUR)));
    expect(young.map((v) => `${v.rule}:${v.severity}`)).toEqual(["verify_every:warning"]);
    const old = evaluatePolicies(input({ verify_every: 7 * DAY }, daily(S, "app", 9, HOUR)));
    expect(old.map((v) => `${v.rule}:${v.severity}`)).toEqual(["verify_every:critical"]);
  });

  it("the last pass is too old", () => {
    const backups = daily(S, "app", 10, HOUR);
    const vs = evaluatePolicies(
      input({ verify_every: 7 * DAY }, backups, { history: [historyDrill(backups[0]!, ago(9 * DAY))] }),
    );
    expect(vs).toHaveLength(1);
    expect(vs[0]!.message).toMatch(
      /^no passing restore drill of app-dumps\/app for 9d \(last: .* on 2025-03-01 12:00 UTC\); the policy asks for one every 7d$/,
    );
    expect(vs[0]!.since).toBe(ago(2 * DAY));
  });

  it("coverage is per series: one database verified does not cover the other", () => {
    const a = daily(S, "app", 2, HOUR);
    const b = daily(S, "billing", 2, HOUR);
    const vs = evaluatePolicies(input({ verify_every: 7 * DAY }, [...a, ...b], { drills: [drill(a[1]!)] }));
    expect(vs.map((v) => `${v.series}:${v.rule}`)).toEqual(["billing:verify_every"]);
  });
});

describe("last_drill", () => {
  const backups = daily(S, "app", 3, HOUR);
  const sev = (vs: ReturnType<typeof evaluatePolicies>) =>
    vs.filter((v) => v.rule === "last_drill").map((v) => `${v.severity}:${v.evidence?.aspect}`);

  it("a failed newest drill is critical although an older drill passed inside verify_every", () => {
    const history = [historyDrill(backups[1]!, ago(DAY)), historyDrill(backups[2]!, ago(HOUR), "fail")];
    const vs = evaluatePolicies(input({ verify_every: 7 * DAY }, backups, { history }));
    expect(rules(vs)).toEqual(["last_drill:fail"]);
    expect(vs[0]!.severity).toBe("critical");
    expect(vs[0]!.message).toContain(`the newest restore drill of app-dumps/app FAILED (${backups[2]!.id}`);
  });

  it("an error is a warning; a later pass clears both", () => {
    const err = [historyDrill(backups[1]!, ago(DAY)), historyDrill(backups[2]!, ago(HOUR), "error")];
    expect(sev(evaluatePolicies(input({}, backups, { history: err })))).toEqual(["warning:error"]);
    const healed = [...err, historyDrill(backups[2]!, ago(HOUR / 2))];
    expect(sev(evaluatePolicies(input({}, backups, { history: healed })))).toEqual([]);
  });

  it("a drill aborted by a signal is passed over: the drill before it decides", () => {
    const aborted = historyDrill(backups[2]!, ago(HOUR), "error", 5_000, {
      reason: "drill aborted during restore: received SIGTERM",
    });
    const afterPass = [historyDrill(backups[1]!, ago(DAY)), aborted];
    expect(sev(evaluatePolicies(input({}, backups, { history: afterPass })))).toEqual([]);
    const afterFail = [historyDrill(backups[1]!, ago(DAY), "fail"), aborted];
    expect(sev(evaluatePolicies(input({}, backups, { history: afterFail })))).toEqual(["critical:fail"]);
  });

  it("a drill of the current run speaks for itself", () => {
    const vs = evaluatePolicies(input({}, backups, { drills: [drill(backups[2]!, "fail")] }));
    expect(sev(vs)).toEqual([]);
  });
});

describe("size_anomaly", () => {
  const mib = 1024 * 1024;
  it("a much smaller newest backup warns", () => {
    const backups = daily(S, "app", 8, HOUR, (i) => (i === 7 ? 10 * mib : 200 * mib));
    const vs = evaluatePolicies(input({}, backups));
    expect(vs).toHaveLength(1);
    expect(vs[0]!.message).toMatch(
      /is 10\.0 MiB, 20\.0x smaller than the median 200\.0 MiB of the previous 7$/,
    );
  });
  it("a much larger one warns, an empty one is critical, disabled means quiet", () => {
    const larger = daily(S, "app", 5, HOUR, (i) => (i === 4 ? 900 * mib : 200 * mib));
    expect(evaluatePolicies(input({}, larger))[0]!.message).toContain("4.5x larger");
    const empty = daily(S, "app", 5, HOUR, (i) => (i === 4 ? 0 : 200 * mib));
    expect(evaluatePolicies(input({}, empty))[0]!.severity).toBe("critical");
    expect(
      evaluatePolicies(input({ size_anomaly: { enabled: false, factor: 3, window: 7 } }, empty)),
    ).toEqual([]);
  });
  it("needs three earlier backups", () => {
    expect(
      evaluatePolicies(
        input(
          {},
          daily(S, "app", 3, HOUR, (i) => (i === 2 ? 1 : 200 * mib)),
        ),
      ),
    ).toEqual([]);
  });
});

describe("wal_continuity", () => {
  it("turns WAL findings into violations and ignores other findings", () => {
    const findings = [
      {
        source: S,
        series: "main",
        kind: "wal_gap",
        severity: "critical" as const,
        message: "WAL segment 000000010000000000000005 is missing between 04 and 06",
      },
      {
        source: S,
        series: "main",
        backupId: "base-1",
        kind: "wal_missing_for_backup",
        severity: "critical" as const,
        message: "base-1 cannot be restored: its WAL 00000001000000000000000A is not archived",
      },
      { source: S, kind: "wal_stalled", severity: "warning" as const, message: "no WAL archived for 3h" },
      { source: S, kind: "catalog", severity: "warning" as const, message: "something else" },
    ];
    const vs = evaluatePolicies(input({}, [backup(S, "main", HOUR)], { findings }));
    expect(vs.map((v) => [v.rule, v.severity, v.series ?? "-"])).toEqual([
      ["wal_continuity", "critical", "main"],
      ["wal_continuity", "critical", "main"],
      ["wal_continuity", "warning", "-"],
    ]);
    expect(new Set(vs.map(violationKey)).size).toBe(3);
    expect(vs.map((v) => v.message)).toContain("no WAL archived for 3h");
  });
});

describe("ordering and shape", () => {
  it("critical first; every violation has rule, severity, message and evidence", () => {
    const backups = [...daily(S, "app", 40, 30 * HOUR), ...daily(S, "billing", 3, HOUR)];
    const vs = evaluatePolicies(
      input({ rpo: 26 * HOUR, verify_every: 7 * DAY, retention: { min_count: 7, max_days: 35 } }, backups),
    );
    expect(vs.length).toBeGreaterThan(3);
    const firstWarning = vs.findIndex((v) => v.severity === "warning");
    expect(vs.slice(firstWarning).every((v) => v.severity === "warning")).toBe(true);
    for (const v of vs) {
      expect(v.message.length).toBeGreaterThan(20);
      expect(v.evidence).toBeTypeOf("object");
    }
  });
});
