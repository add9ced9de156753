/**
 * The decisions Attest's verdicts rest on, each pinned by a case a broken program would get
 * wrong: the drill's outcome after a stop, the checks' verdict, the run status, the sandbox
 * major, the inventory comparison, the selection rules on real dump listings, assertions, the
 * recovery failure classes, and timeouts as results.
 */
import { describe, expect, it } from "vitest";
import {
  classifyDrillFailure,
  killedBySignal,
  verdictOf,
  verdictOfChecks,
} from "../src/audit/drill-outcome.js";
import { runStatus } from "../src/audit/run-status.js";
import { SelectionError, selectPlans } from "../src/audit/select.js";
import { satisfies } from "../src/checks/assertions.js";
import { compareInventories } from "../src/checks/inventory.js";
import { parseConfig } from "../src/config/load.js";
import { recordsOfRun } from "../src/history/history-record.js";
import type { Backup, CheckResult, Inventory, RunResult, Violation } from "../src/model.js";
import { classifyRecoveryFailure } from "../src/restore/physical/recovery-log.js";
import { chooseMajor } from "../src/runtimes/runtime.js";
import { createSource } from "../src/sources/registry.js";
import { BackupDefectError, UsageError, VerifierError } from "../src/util/errors.js";
import { createLogger } from "../src/util/log.js";
import { ProcessError, runProcess } from "../src/util/process.js";
import { drill } from "./report-fixtures.js";
import { DUMPS } from "./support/cli.js";

const check = (name: string, status: CheckResult["status"], detail = "d"): CheckResult => ({
  name,
  status,
  detail,
});

describe("the outcome of a drill that threw", () => {
  const psqlStopped = () =>
    new BackupDefectError("psql failed: psql stopped: received SIGTERM", {
      cause: new ProcessError("psql stopped: received SIGTERM", {
        code: null,
        signal: "SIGTERM",
        stdout: "",
        stderrTail: "",
        timedOut: false,
      }),
    });

  it("is an abort error once the drill was stopped, even when a tool reported a defect first", () => {
    const end = classifyDrillFailure(psqlStopped(), "restore", { kind: "aborted", why: "received SIGTERM" });
    expect(end).toEqual({ outcome: "aborted", reason: "drill aborted during restore: received SIGTERM" });
    expect(verdictOf(end)).toBe("error");
  });

  it("names Attest's own deadline and the phase it hit", () => {
    const end = classifyDrillFailure(new BackupDefectError("pg_restore: terminated by user"), "checks", {
      kind: "timed-out",
      afterMs: 90_000,
    });
    expect(end.outcome).toBe("timed-out");
    expect(end.reason).toMatch(/^drill timed out after .+ during checks$/);
    expect(verdictOf(end)).toBe("error");
  });

  it("does not blame the backup for a tool a signal ended before Attest heard of it", () => {
    expect(killedBySignal(psqlStopped())).toBe(true);
    // pg_restore -j prints this when it ends its workers after one failed (a cut archive): no stop
    expect(killedBySignal(new Error("pg_restore: terminated by user"))).toBe(false);
    // a crash on a malformed archive is no stop from outside: the defect stands
    const crashed = new BackupDefectError("pg_restore failed", {
      cause: new ProcessError("pg_restore was killed by SIGSEGV", {
        code: null,
        signal: "SIGSEGV",
        stdout: "",
        stderrTail: "",
        timedOut: false,
      }),
    });
    expect(killedBySignal(crashed)).toBe(false);
    expect(verdictOf(classifyDrillFailure(crashed, "restore", undefined))).toBe("fail");
    const end = classifyDrillFailure(
      new BackupDefectError(
        "pg_restore failed: could not read from input file: end of file | a worker process died unexpectedly | pg_restore: terminated by user",
      ),
      "restore",
      undefined,
    );
    expect(verdictOf(end)).toBe("fail");
  });

  it("is fail for a real defect, and error for the verifier's own trouble", () => {
    const defect = classifyDrillFailure(
      new BackupDefectError("pg_restore failed: could not read input file: end of file"),
      "restore",
      undefined,
    );
    expect(defect).toEqual({
      outcome: "backup-defect",
      reason: "pg_restore failed: could not read input file: end of file",
    });
    expect(verdictOf(defect)).toBe("fail");
    const disk = classifyDrillFailure(
      new VerifierError("could not extend file base/1/2: No space left on device"),
      "restore",
      undefined,
    );
    expect(disk.outcome).toBe("disk-full");
    expect(verdictOf(disk)).toBe("error");
    const broken = classifyDrillFailure(new Error("docker: connect ENOENT"), "provision", undefined);
    expect(broken).toEqual({ outcome: "verifier-failed", reason: "provision: docker: connect ENOENT" });
  });
});

describe("verdictOfChecks", () => {
  it("fail beats error beats warn, and names the first check of that status", () => {
    expect(
      verdictOfChecks([
        check("server_up", "pass"),
        check("amcheck", "error", "x"),
        check("full_read", "fail", "y"),
      ]),
    ).toEqual({ verdict: "fail", reason: "full_read: y" });
    expect(verdictOfChecks([check("inventory", "warn", "w"), check("amcheck", "error", "x")])).toEqual({
      verdict: "error",
      reason: "amcheck could not be performed: x",
    });
    expect(verdictOfChecks([check("server_up", "pass"), check("inventory", "warn", "w")]).verdict).toBe(
      "warn",
    );
  });

  it("never passes a drill in which no check passed", () => {
    expect(verdictOfChecks([])).toEqual({ verdict: "error", reason: "no check was performed" });
    expect(verdictOfChecks([check("amcheck", "skip")]).verdict).toBe("error");
    expect(verdictOfChecks([check("server_up", "pass"), check("amcheck", "skip")])).toEqual({
      verdict: "pass",
      reason: "restored; 1 check(s) passed",
    });
  });
});

describe("runStatus", () => {
  const b: Backup = {
    source: "s",
    id: "a.dump",
    series: "a",
    family: "logical",
    format: "custom",
    createdAt: "2026-11-20T03:00:00.000Z",
    createdAtOrigin: "name",
    sizeBytes: 1,
    location: "/x/a.dump",
    labels: {},
  };
  const critical = { source: "s", rule: "rpo", severity: "critical", message: "m" } as Violation;
  const warning: Violation = { ...critical, severity: "warning" };

  it("a failed drill or a critical violation fails the run, over any error", () => {
    expect(runStatus([drill(b, "error"), drill(b, "fail")], [])).toBe("fail");
    expect(runStatus([drill(b, "pass")], [critical])).toBe("fail");
  });
  it("an error beats warnings; a warning violation makes a passing run warn", () => {
    expect(runStatus([drill(b, "warn"), drill(b, "error")], [warning])).toBe("error");
    expect(runStatus([drill(b, "pass")], [warning])).toBe("warn");
    expect(runStatus([drill(b, "pass")], [])).toBe("pass");
  });
});

describe("chooseMajor", () => {
  it("takes the exact major, a newer one only for logical restores, and says what exists", () => {
    expect(chooseMajor(15, [16, 15], false)).toEqual({ major: 15 });
    expect(chooseMajor(14, [17, 16], true)).toEqual({ major: 16 });
    const physical = chooseMajor(14, [16, 15], false);
    expect(physical).toEqual({
      error: "backup is from PostgreSQL 14; a physical restore needs exactly that major (have: 15, 16)",
    });
    expect(chooseMajor(18, [15], true)).toEqual({
      error: "backup is from PostgreSQL 18; no sandbox of that major or newer is available (have: 15)",
    });
  });
});

describe("compareInventories", () => {
  const inv = (
    tables: Inventory["databases"][number]["tables"],
    extra: Partial<Inventory["databases"][number]> = {},
  ): Inventory => ({
    roles: [],
    databases: [
      {
        name: "app",
        schemas: ["public"],
        tables,
        indexes: 0,
        sequences: 0,
        views: 0,
        extensions: ["plpgsql"],
        ...extra,
      },
    ],
  });

  it("reports a lost table and a row drop above the tolerance, not one within it", () => {
    const prev = inv([
      { name: "public.a", rows: 100 },
      { name: "public.b", rows: 100 },
      { name: "public.c", rows: 100 },
    ]);
    const cur = inv([
      { name: "public.a", rows: 89 },
      { name: "public.b", rows: 91 },
    ]);
    expect(compareInventories(prev, cur, 0.1)).toEqual([
      "table app.public.a lost 11 of 100 rows (11% > 10%)",
      "table app.public.c disappeared (had 100 rows)",
    ]);
  });

  it("reports a missing database and a missing extension", () => {
    const prev = inv([], { extensions: ["plpgsql", "pg_trgm"] });
    expect(compareInventories(prev, inv([]), 0)).toEqual(["extension pg_trgm missing in app"]);
    expect(compareInventories(prev, { roles: [], databases: [] }, 0)).toEqual(["database app is missing"]);
  });

  it("still compares with inventories written before parents and matviews were told apart", () => {
    // before: the matview was a table, the partitioned parent counted its partitions' rows
    const prev = inv([
      { name: "audit.events", rows: 1145 },
      { name: "audit.events_2026_11", rows: 357 },
      { name: "sales.daily_revenue", rows: 30 },
    ]);
    const cur = inv(
      [
        { name: "audit.events", rows: 0, kind: "partitioned" },
        { name: "audit.events_2026_11", rows: 357 },
      ],
      { matviews: ["sales.daily_revenue"] },
    );
    expect(compareInventories(prev, cur, 0)).toEqual([]);
    // a partition that lost rows is still found
    const lost = inv(
      [
        { name: "audit.events", rows: 0, kind: "partitioned" },
        { name: "audit.events_2026_11", rows: 10 },
      ],
      { matviews: ["sales.daily_revenue"] },
    );
    expect(compareInventories(prev, lost, 0.1)).toEqual([
      "table app.audit.events_2026_11 lost 347 of 357 rows (97% > 10%)",
    ]);
  });
});

describe("selectPlans on a real dump listing", async () => {
  const config = parseConfig(
    `sources: [{ name: good, type: dump-dir, path: ${DUMPS}/good }]\n`,
    "/tmp/attest-decisions.yml",
  );
  const source = createSource(config.sources[0]!);
  const backups = await source.list({ logger: createLogger({ level: "error" }) });
  const app = backups.filter((b) => b.series === "app");
  const newestApp = app.reduce((a, b) => (a.createdAt >= b.createdAt ? a : b));
  const now = new Date(Date.parse(newestApp.createdAt) + 3600_000);
  const ids = (rules: string[], extra: Partial<Parameters<typeof selectPlans>[2]> = {}) =>
    selectPlans(source, backups, { rules, now, history: [], ...extra }).map((p) => p.backup.id);

  it("the listing has two days of the app series (the fixture this test relies on)", () => {
    expect(new Set(app.map((b) => b.createdAt.slice(0, 10))).size).toBe(2);
  });

  it("latest takes the newest backup of each series", () => {
    const picked = selectPlans(source, backups, { rules: ["latest"], now, history: [] });
    expect(picked.map((p) => p.backup.series).sort()).toEqual(
      [...new Set(backups.map((b) => b.series))].sort(),
    );
    const appPick = picked.find((p) => p.backup.series === "app")!;
    expect(appPick.backup.createdAt).toBe(newestApp.createdAt);
  });

  it("all-new skips backups already drilled to a verdict, and retries those that ended in error", () => {
    const [first, second, third] = backups;
    const run: RunResult = {
      run: { id: "r1", kind: "audit", startedAt: now.toISOString(), finishedAt: now.toISOString() },
      status: "fail",
      drills: [drill(first!, "pass"), drill(second!, "fail"), drill(third!, "error")],
      violations: [],
    };
    const history = recordsOfRun(run, now.toISOString());
    const picked = ids(["all-new"], { history });
    expect(picked).not.toContain(first!.id);
    expect(picked).not.toContain(second!.id);
    expect(picked).toContain(third!.id);
    expect(picked).toHaveLength(backups.length - 2);
    // another source's history does not count
    expect(ids(["all-new"], { history: history.map((r) => ({ ...r, source: "other" })) })).toHaveLength(
      backups.length,
    );
  });

  it("random:N@window draws N distinct backups per series from the window only", () => {
    const seq = [0.99, 0.0, 0.5, 0.3];
    let i = 0;
    const random = () => seq[i++ % seq.length]!;
    const picked = selectPlans(source, backups, { rules: ["random:2@2d"], now, history: [], random });
    const appPicked = picked.filter((p) => p.backup.series === "app");
    expect(appPicked).toHaveLength(2);
    expect(new Set(appPicked.map((p) => p.backup.id)).size).toBe(2);
    for (const p of picked) expect(p.reason).toBe("random:2@2d");
    // a window of two hours holds only the newest day's backups, all of them when N is large
    const recent = selectPlans(source, backups, { rules: ["random:50@2h"], now, history: [] });
    for (const p of recent)
      expect(Date.parse(p.backup.createdAt)).toBeGreaterThanOrEqual(now.getTime() - 2 * 3600_000);
    expect(recent.filter((p) => p.backup.series === "app").length).toBe(
      app.filter((b) => Date.parse(b.createdAt) >= now.getTime() - 2 * 3600_000).length,
    );
  });

  it("an unknown backup id is bad usage, not an unverifiable run", () => {
    expect(() => ids(["nope.dump"])).toThrow(SelectionError);
    expect(() => ids(["nope.dump"])).toThrow(UsageError);
    expect(() => ids(["nope.dump"])).toThrow('source good has no backup with id "nope.dump"');
  });
});

describe("satisfies", () => {
  it("compares numbers as numbers and text as text", () => {
    expect(satisfies("10", "> 9")).toBe(true);
    expect(satisfies("10", "> 9.5")).toBe(true);
    expect(satisfies("abc", "> abd")).toBe(false);
    expect(satisfies(0, "> 0")).toBe(false);
    expect(satisfies("42", "= 42")).toBe(true);
    expect(satisfies("42", "<> 42")).toBe(false);
    expect(satisfies("15", "between 10 and 20")).toBe(true);
    expect(satisfies("21", "between 10 and 20")).toBe(false);
  });
  it("a NULL satisfies only `is null`, and an unknown operator nothing", () => {
    expect(satisfies(null, "is null")).toBe(true);
    expect(satisfies(null, "> 0")).toBe(false);
    expect(satisfies(null, "!= 0")).toBe(false);
    expect(satisfies("x", "is not null")).toBe(true);
    expect(satisfies("5", "roughly 5")).toBe(false);
    expect(satisfies("ok-17", "~ ^ok-\\d+$")).toBe(true);
    expect(satisfies(new Date("2026-01-02T00:00:00Z"), "> '2026-01-01'")).toBe(true);
  });
});

describe("classifyRecoveryFailure", () => {
  it("missing WAL and damaged pages are the backup's defects", () => {
    expect(classifyRecoveryFailure("FATAL:  WAL ends before end of online backup").defect).toBe(true);
    expect(classifyRecoveryFailure("FATAL:  could not locate required checkpoint record").defect).toBe(true);
    expect(classifyRecoveryFailure("PANIC:  WAL contains references to invalid pages").defect).toBe(true);
  });
  it("a target before the consistency point, an unknown FATAL or none at all are not", () => {
    const early = classifyRecoveryFailure(
      "FATAL:  requested recovery stop point is before consistent recovery point",
    );
    expect(early.defect).toBe(false);
    expect(early.what).toMatch(/recovery target lies before/);
    expect(classifyRecoveryFailure("FATAL:  could not connect to the primary").defect).toBe(false);
    expect(classifyRecoveryFailure(undefined).defect).toBe(false);
  });
});

describe("runProcess timeouts", () => {
  it("with allowFailure a timeout is a result, without it a ProcessError", async () => {
    const r = await runProcess("sleep", ["30"], { timeoutMs: 200, allowFailure: true });
    expect(r.timedOut).toBe(true);
    expect(r.code).toBeNull();
    const err = await runProcess("sleep", ["30"], { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessError);
    expect((err as ProcessError).result?.timedOut).toBe(true);
    expect((err as Error).message).toMatch(/^sleep timed out after 200 ms/);
  });
});
