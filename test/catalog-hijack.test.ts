/**
 * A backup whose catalog shadows built-ins Attest's own queries use (issue 10 item 7, red team
 * S3-1/S3-2): an overload pg_catalog.pg_read_file(text, integer, integer, boolean), an operator
 * pg_catalog.!~ (name, name), casts (pg_lsn AS text) and (bigint AS text), each raising
 * ATTEST-HIJACK-RAN when called (fixtures/build-catalog-hijack.sh). Drilled by the real CLI in
 * the local runtime: the drill ends `error` naming the objects, and none of them ever ran from
 * one of Attest's queries (the marker appears nowhere in what the run printed or stored).
 */
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CheckContext } from "../src/checks/check.js";
import { checksumFailuresCheck } from "../src/checks/checksums.js";
import { disableEventTriggers } from "../src/checks/event-triggers.js";
import { fullReadCheck } from "../src/checks/full-read.js";
import { inventoryCheck } from "../src/checks/inventory.js";
import { serverUpCheck } from "../src/checks/server-up.js";
import { writeProbeCheck } from "../src/checks/write-probe.js";
import { catalogShadowsSql } from "../src/restore/catalog-guard.js";
import { sessionOptions } from "../src/runtimes/sql.js";
import { ROOT } from "./support/cli.js";
import { drillSuite } from "./support/runtimes.js";

const FIXTURE = join(ROOT, "fixtures", "generated", "catalog-hijack");
const MARKER = "ATTEST-HIJACK-RAN";

/** Every file under `dir`, as text. */
function textsUnder(dir: string): string {
  let all = "";
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) all += readFileSync(join(e.parentPath, e.name), "utf8");
  return all;
}

beforeAll(() => {
  execFileSync("bash", [join(ROOT, "fixtures", "build-catalog-hijack.sh"), FIXTURE], {
    stdio: ["ignore", "ignore", "inherit"],
  });
}, 120_000);

describe("a catalog that shadows built-ins, local runtime", () => {
  const { config, run } = drillSuite("local");

  it("refuses a plain dump that adds pg_catalog overloads, an operator and casts: error, nothing of them ran", async () => {
    const ws = config(`
sources:
  - name: hijack
    type: dump-dir
    path: ${FIXTURE}/dumps
    timeout: 120s`);
    const r = await run(["drill", "--config", ws.config, "--source", "hijack"]);
    const d = r.doc.drills[0]!;
    expect(d.verdict, d.reason).toBe("error");
    expect(d.reason).toContain("shadow PostgreSQL's built-ins");
    expect(d.reason).toContain("function pg_catalog.pg_read_file(text,integer,integer,boolean) (plpgsql)");
    expect(d.reason).toContain("operator pg_catalog.!~(name,name) (plpgsql)");
    expect(d.reason).toContain("cast (pg_lsn AS text) (plpgsql)");
    expect(d.checks).toEqual([]);
    expect(`${r.stdout}\n${r.stderr}\n${textsUnder(join(ws.dir, "reports"))}`).not.toContain(MARKER);
  }, 120_000);

  it("refuses a base backup whose catalog has the same objects before Attest's first query after promotion", async () => {
    const ws = config(`
sources:
  - name: hijack
    type: basebackup
    path: ${FIXTURE}/base
    timeout: 120s`);
    const r = await run(["drill", "--config", ws.config, "--source", "hijack"]);
    const d = r.doc.drills[0]!;
    expect(d.verdict, d.reason).toBe("error");
    expect(d.reason).toContain('the restored catalog of database "postgres" adds objects that shadow');
    expect(d.reason).toContain("function pg_catalog.pg_read_file(text,integer,integer,boolean) (plpgsql)");
    expect(d.reason).toContain("cast (bigint AS text) (plpgsql)");
    expect(d.checks).toEqual([]);
    expect(`${r.stdout}\n${r.stderr}\n${textsUnder(join(ws.dir, "reports"))}`).not.toContain(MARKER);
  }, 120_000);
});

/**
 * The guard aside: Attest's own check queries, run as the drill runs them (its pinned session),
 * against a real server started from the hijacked base backup, pick the built-ins every time;
 * the same server answers the old query shapes with the backup's functions (the hijack is real).
 */
describe("Attest's check queries on a hijacked catalog", () => {
  const PGBIN = "/usr/lib/postgresql/15/bin";
  let dir = "";
  const asPostgres = (args: string[]) =>
    execFileSync("runuser", ["-u", "postgres", "--", ...args], { stdio: ["ignore", "pipe", "pipe"] });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "attest-hijack-server-"));
    chmodSync(dir, 0o755);
    cpSync(join(FIXTURE, "base", "hijack"), join(dir, "data"), { recursive: true });
    execFileSync("chown", ["-R", "postgres:", dir]);
    chmodSync(join(dir, "data"), 0o700);
    asPostgres([
      `${PGBIN}/pg_ctl`,
      "-D",
      join(dir, "data"),
      "-l",
      join(dir, "log"),
      "-w",
      "-t",
      "60",
      "-o",
      `-c listen_addresses= -c port=5432 -c unix_socket_directories=${dir}`,
      "start",
    ]);
  }, 120_000);

  afterAll(() => {
    if (!dir) return;
    try {
      asPostgres([`${PGBIN}/pg_ctl`, "-D", join(dir, "data"), "-m", "immediate", "-w", "stop"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const ctx = (): CheckContext =>
    ({
      sandbox: { connection: { host: dir, port: 5432, user: "postgres", password: "" } },
      plan: {},
      restored: { databases: ["app", "postgres"], notes: [] },
      config: { full_read: true, write: true, inventory: { compare: false, row_drop_tolerance: 0 } },
      shared: {},
      drillStartedAt: new Date(),
      timeoutMs: 60_000,
    }) as unknown as CheckContext;

  /** One query in Attest's pinned session, as the drill's checks send it. */
  async function query(db: string, sql: string): Promise<string> {
    const c = new pg.Client({
      host: dir,
      port: 5432,
      user: "postgres",
      database: db,
      options: sessionOptions(),
    });
    await c.connect();
    try {
      return JSON.stringify((await c.query(sql)).rows);
    } catch (err) {
      return String(err);
    } finally {
      await c.end();
    }
  }

  it("a pg_catalog function of an extension that overloads no built-in (adminpack) is no shadow; an overload is", async () => {
    await query("postgres", "create database adm template template0");
    try {
      expect(await query("adm", "create extension adminpack")).toBe("[]");
      // adminpack's pg_catalog.pg_file_rename(text,text) is language sql, and Attest never calls it
      const sqlFns =
        "select count(*)::int as n from pg_catalog.pg_proc where proname = 'pg_file_rename' and prolang = 14";
      expect(await query("adm", sqlFns)).toBe('[{"n":1}]');
      expect(await query("adm", catalogShadowsSql(15))).toBe("[]");
      const overload =
        "create function pg_catalog.length(pg_catalog.int4) returns int language sql as 'select 1'";
      expect(await query("adm", overload)).toBe("[]");
      expect(await query("adm", catalogShadowsSql(15))).toContain("length(integer)");
    } finally {
      await query("postgres", "drop database adm");
    }
  });

  it("the old query shapes run the backup's functions; Attest's checks never do", async () => {
    expect(await query("app", "select nspname from pg_namespace where nspname !~ '^pg_'")).toContain(MARKER);
    expect(await query("app", "select count(*)::text from pg_class")).toContain(MARKER);
    expect(await query("app", "select sum(length(t::text)) from public.items t")).toContain(MARKER);
    expect(await query("postgres", "select pg_read_file('PG_VERSION', 0, 100, true)")).toContain(MARKER);
    expect(await query("postgres", catalogShadowsSql(15))).toContain(
      "pg_read_file(text,integer,integer,boolean)",
    );
    // before 14 pg_type has no typsubscript: the guard for an older major does not name it (the
    // only older catalogs here are this 15's, which the query still runs on)
    expect(catalogShadowsSql(14)).toContain("typsubscript");
    expect(catalogShadowsSql(13)).not.toContain("typsubscript");
    expect(await query("postgres", catalogShadowsSql(13))).toContain(
      "pg_read_file(text,integer,integer,boolean)",
    );

    const c = ctx();
    expect(await disableEventTriggers(c)).toBeUndefined();
    const results = [
      await serverUpCheck.run(c),
      await fullReadCheck.run(c),
      await inventoryCheck.run(c),
      await checksumFailuresCheck.run(c),
      await writeProbeCheck.run(c),
    ];
    for (const r of results) {
      expect(r.detail, r.name).not.toContain(MARKER);
      expect(["pass", "skip"], `${r.name}: ${r.detail}`).toContain(r.status);
    }
    expect(results[1]!.detail).toMatch(/50 rows/);
    const app = c.shared.inventory!.databases.find((d) => d.name === "app")!;
    expect(app.schemas).toEqual(["public"]);
    expect(app.tables).toEqual([{ name: "public.items", rows: 50 }]);
    expect(app.indexes).toBe(1);
    expect(c.shared.inventory!.roles).toEqual(["postgres"]);
  }, 60_000);
});
