/** pg_amcheck over databases whose names are not plain identifiers, in a real sandbox. */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { amcheckCheck, exactPattern } from "../src/checks/amcheck.js";
import type { CheckContext } from "../src/checks/check.js";
import { LocalRuntime } from "../src/runtimes/local/local-runtime.js";
import type { Sandbox } from "../src/runtimes/runtime.js";
import { quoteIdent, withClient } from "../src/runtimes/sql.js";
import { createLogger } from "../src/util/log.js";

const NAMES = ["shop.prod", "MyShop", 'my "odd" db ü'];
// a short name: the sandbox's socket path under it must stay within a Unix socket's 107 bytes
const work = mkdtempSync(join(tmpdir(), "am-"));
chmodSync(work, 0o711);
let sandbox: Sandbox;

/** Just what the amcheck check reads of a drill's context. */
function context(databases: string[]): CheckContext {
  return {
    sandbox,
    restored: { databases, notes: [] },
    config: { amcheck: true },
    timeoutMs: 120_000,
    logger: createLogger({ level: "error" }),
  } as unknown as CheckContext;
}

beforeAll(async () => {
  const runtime = new LocalRuntime({
    user: "attest-sandbox",
    workDir: work,
    logger: createLogger({ level: "error" }),
  });
  sandbox = await runtime.provision({
    pgMajor: 15,
    allowNewer: true,
    labels: { run: `amcheck${process.pid}`, source: "t", backup: "b" },
    mode: "init",
    inputs: [],
  });
  for (const name of [...NAMES, "shopxprod"]) {
    await withClient(sandbox, "postgres", (c) => c.query(`CREATE DATABASE ${quoteIdent(name)}`));
    await withClient(sandbox, name, (c) =>
      c.query(
        "create table public.t (id int primary key, v text); insert into public.t select g, g::text from generate_series(1, 500) g",
      ),
    );
  }
}, 120_000);

afterAll(async () => {
  await sandbox?.destroy();
  rmSync(work, { recursive: true, force: true });
});

describe("amcheck with odd database names", () => {
  it("checks each database by its exact name, dots, capitals, quotes and non-ASCII included", async () => {
    const r = await amcheckCheck.run(context(NAMES));
    expect([r.status, r.detail]).toEqual(["pass", expect.stringContaining('my "odd" db ü')]);
  });

  it("quotes a name into a pattern that matches only that name", () => {
    expect(exactPattern("shop.prod")).toBe('"shop.prod"');
    expect(exactPattern('my "odd" db')).toBe('"my ""odd"" db"');
  });

  it("says error, not corruption, when pg_amcheck cannot check (a database that is not there)", async () => {
    const r = await amcheckCheck.run(context(["no such db"]));
    expect(r.status).toBe("error");
    expect(r.detail).toMatch(/"no such db" does not exist/);
  });

  it("uses a fresh amcheck, not the one the backup carries with its functions replaced", async () => {
    await withClient(sandbox, "postgres", (c) => c.query("CREATE DATABASE hijacked"));
    await withClient(sandbox, "hijacked", async (c) => {
      await c.query(
        "create table public.t (id int primary key); insert into public.t select generate_series(1, 100)",
      );
      await c.query("CREATE EXTENSION amcheck WITH SCHEMA public");
      // a superuser may replace an extension's member functions; the backup's author was one
      await c.query(`CREATE OR REPLACE FUNCTION public.bt_index_check(index regclass, heapallindexed boolean) RETURNS void
        LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'HIJACKED-AMCHECK'; END $$`);
    });
    const r = await amcheckCheck.run(context(["hijacked"]));
    expect(r.status, r.detail).toBe("pass");
    expect(r.detail).not.toContain("HIJACKED");
    expect(r.detail).toMatch(/own amcheck extension in hijacked was replaced by a fresh one/);
  });

  it("a user's assertion finds its tables through the database's search_path, never the backup's shadows of built-ins", async () => {
    await withClient(sandbox, "postgres", (c) => c.query("CREATE DATABASE shadow"));
    await withClient(sandbox, "shadow", async (c) => {
      await c.query(
        "create schema evil; create table public.t (v text); insert into public.t values ('abc')",
      );
      await c.query("create function evil.length(text) returns int language sql as 'select 999'");
      await c.query("ALTER DATABASE shadow SET search_path = evil, public");
    });
    const got = await withClient(
      sandbox,
      "shadow",
      async (c) => (await c.query<{ n: number }>("select length(v) as n from t")).rows[0]?.n,
      "user",
    );
    expect(got).toBe(3);
  });
});
