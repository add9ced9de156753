/**
 * Contract suite of logical drills, run against every runtime: real pg_dump output of the
 * sample database (fixtures/build-dumps.sh), restored by the real CLI into real sandboxes.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { DrillResult } from "../src/model.js";
import { DUMPS } from "./support/cli.js";
import { drillSuite, selectedRuntimes } from "./support/runtimes.js";

interface Expected {
  roles: string[];
  databases: Record<
    string,
    { tables: Record<string, number>; extensions: string[]; max_orders_created_at?: string }
  >;
}
const expected = JSON.parse(readFileSync(join(DUMPS, "expected.json"), "utf8")) as Expected;
const PROBE = "/tmp/attest-pwned-attest-shell-probe";

function tablesOf(dir: string, d: DrillResult): Record<string, number> {
  const ev = JSON.parse(readFileSync(join(dir, "reports", d.evidence!), "utf8"));
  const db = ev.inventory.databases[0] as { tables: Array<{ name: string; rows: number; kind?: string }> };
  // partitioned parents are listed as such, with no rows of their own (expected.json has them apart)
  return Object.fromEntries(db.tables.filter((t) => t.kind !== "partitioned").map((t) => [t.name, t.rows]));
}

describe.each(selectedRuntimes())("logical drills in the %s runtime", (runtime) => {
  const { config, run } = drillSuite(runtime);

  it("restores every format of the good dumps with the expected inventory, and exits 0", async () => {
    const ws = config(`
sources:
  - name: good
    type: dump-dir
    path: ${DUMPS}/good
    globals: ${DUMPS}/good/globals.sql
    select: all
    checks:
      queries:
        - { name: orders exist, database: app, sql: "select count(*) from sales.orders", expect: "> 0" }
      freshness: { database: app, sql: "select max(created_at) from sales.orders" }`);
    const { code, doc, stderr } = await run(["audit", "--config", ws.config]);
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(doc.status).toBe("pass");
    expect(doc.drills.map((d) => d.backup.format).sort()).toEqual([
      "custom",
      "custom",
      "custom",
      "directory",
      "plain",
      "plain-gzip",
      "tar",
    ]);
    for (const d of doc.drills) {
      expect(d.verdict, `${d.backup.id}: ${d.reason}`).toBe("pass");
      expect(d.runtime).toBe(runtime);
      expect(d.timings.totalMs).toBeGreaterThanOrEqual(
        d.timings.restoreMs + d.timings.provisionMs + d.timings.checksMs,
      );
      for (const name of ["server_up", "full_read", "inventory", "amcheck", "write"]) {
        expect(d.checks.find((c) => c.name === name)?.status, `${d.backup.id} ${name}`).toBe("pass");
      }
      const tables = tablesOf(ws.dir, d);
      if (d.series === "crm") {
        expect(tables).toEqual(expected.databases.crm!.tables);
      } else if (d.backup.id.includes("20261120")) {
        delete tables["sales.daily_revenue"]; // a materialized view; expected.json lists tables only
        expect(tables).toEqual(expected.databases.app!.tables);
        expect(d.newestData).toBe(expected.databases.app!.max_orders_created_at);
        expect(d.measuredRpoSeconds).toBeGreaterThan(0);
      } else {
        expect(tables["sales.orders"]).toBe(1000);
      }
    }
    const history = readFileSync(join(ws.dir, "reports", "history.csv"), "utf8")
      .trim()
      .split("\n");
    expect(history).toHaveLength(1 + doc.drills.length);
  });

  it("fails every damaged dump with a reason naming the cause, runs nothing of a hostile plain dump, exits 1", async () => {
    rmSync(PROBE, { force: true });
    const ws = config(`
sources:
  - name: damaged
    type: dump-dir
    path: ${DUMPS}/damaged
    select: all`);
    const { code, doc } = await run(["audit", "--config", ws.config]);
    expect(code).toBe(1);
    expect(doc.status).toBe("fail");
    const reason = (id: string) => doc.drills.find((d) => d.backup.id === id)?.reason ?? "(not drilled)";
    for (const d of doc.drills) expect(d.verdict, `${d.backup.id}: ${d.reason}`).toBe("fail");
    expect(doc.drills).toHaveLength(4);
    expect(reason("app_truncated.dump")).toMatch(
      /^app_truncated\.dump: archive cut off or damaged: the file ends inside the data of table [\w.]+ \(TOC entry \d+\); \d+ data entries lie wholly past its end/,
    );
    expect(reason("app_flipped.dump")).toMatch(/pg_restore failed: .*could not uncompress data/);
    expect(reason("app_notadump.dump")).toMatch(/not a pg_dump archive/);
    expect(reason("app_shell.sql")).toMatch(/meta-command \\! at line \d+/);
    expect(existsSync(PROBE)).toBe(false);
  });

  it("refuses SQL that would run code on the host: COPY … PROGRAM fails, a C library outside $libdir is declined", async () => {
    const probe = "/tmp/attest-pwned-copy-attest-shell-probe";
    rmSync(probe, { force: true });
    const ws = config(`
sources:
  - name: hostile
    type: dump-dir
    path: ${DUMPS}/hostile
    select: all`);
    const { code, doc } = await run(["audit", "--config", ws.config]);
    expect(code).toBe(1);
    const byId = (id: string) => doc.drills.find((d) => d.backup.id === id)!;
    expect(byId("app_copy_program.sql").verdict).toBe("fail");
    expect(byId("app_copy_program.sql").reason).toMatch(
      /COPY … PROGRAM .* at line 25; pg_dump never writes this/,
    );
    expect(byId("hostile_c_function.dump").verdict).toBe("error");
    expect(byId("hostile_c_function.dump").reason).toMatch(
      /C function loading \/.*outside_libdir\.so from outside \$libdir/,
    );
    expect(existsSync(probe)).toBe(false);
  });

  it("fails a drill whose SQL assertion does not hold, naming the assertion", async () => {
    const ws = config(`
sources:
  - name: old
    type: dump-dir
    path: ${DUMPS}/good
    include: ["app_20261119*"]
    checks:
      queries:
        - { name: all orders present, database: app, sql: "select count(*) from sales.orders", expect: "= 1120" }`);
    const { code, doc } = await run(["drill", "--config", ws.config, "--source", "old"]);
    expect(code).toBe(1);
    expect(doc.drills[0]!.verdict).toBe("fail");
    expect(doc.drills[0]!.reason).toBe("query: all orders present: 1000 does not satisfy = 1120");
  });

  it("creates the roles a dump references when no globals file is configured, and says so", async () => {
    const ws = config(`
sources:
  - name: noglobals
    type: dump-dir
    path: ${DUMPS}/rotated
    select: latest`);
    const { code, doc } = await run(["audit", "--config", ws.config]);
    expect(code).toBe(0);
    expect(doc.drills.map((d) => d.series).sort()).toEqual(["app", "crm"]);
    const app = doc.drills.find((d) => d.series === "app")!;
    expect(app.notes.join(" ")).toMatch(/created 2 role\(s\) the dump references: app_owner, app_reader/);
  });

  it("compares the inventory with the previous passing drill and flags a table that lost rows", async () => {
    const ws = config(`
sources:
  - name: app
    type: dump-dir
    path: ${DUMPS}/good
    include: ["app_2026112*.dump", "app_20261119*.dump"]
    checks: { inventory: { row_drop_tolerance: 0.05 } }`);
    const first = await run([
      "drill",
      "--config",
      ws.config,
      "--source",
      "app",
      "--backup",
      "app_20261120T0300.dump",
    ]);
    expect(first.code).toBe(0);
    const again = await run([
      "drill",
      "--config",
      ws.config,
      "--source",
      "app",
      "--backup",
      "app_20261120T0300.dump",
    ]);
    expect(again.doc.drills[0]!.checks.find((c) => c.name === "inventory")?.detail).toMatch(
      /consistent with the previous passing drill/,
    );
    // the older dump lacks 120 of the 1120 orders the previous passing drill had (10.7% > 5%)
    const older = await run([
      "drill",
      "--config",
      ws.config,
      "--source",
      "app",
      "--backup",
      "app_20261119T0300.dump",
    ]);
    const inv = older.doc.drills[0]!.checks.find((c) => c.name === "inventory")!;
    expect(inv.status).toBe("warn");
    expect(inv.detail).toMatch(/table app\.sales\.orders lost 120 of 1120 rows/);
    expect(older.doc.drills[0]!.verdict).toBe("warn");
    expect(older.code).toBe(0);
  });
});
