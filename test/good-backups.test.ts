/**
 * Good backups pass: a database with the traits of the public samples (pagila's WITH NO DATA
 * materialized view, a partitioned table, table inheritance) is dumped by the real pg_dump and
 * drilled by the real CLI. It must pass; full_read says it skipped the unpopulated matview;
 * the inventory counts each table's own rows once and lists parents and matviews as such.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Inventory, RunResult } from "../src/model.js";
import { attest, DUMPS, workspace } from "./support/cli.js";
import { leftovers, sandboxYaml, selectedRuntimes } from "./support/runtimes.js";

const PGBIN = "/usr/lib/postgresql/15/bin";

const SQL = `
create table film (id int primary key, title text not null);
insert into film select g, 'film ' || g from generate_series(1, 40) g;
-- pagila creates this on purpose WITH NO DATA: it cannot be read until refreshed
create materialized view rental_by_category as select id % 4 as category, count(*) as n from film group by 1 with no data;
create materialized view film_titles as select id, title from film;
-- inheritance: the parent's own rows and each child's, each counted once
create table payment (id int, amount numeric);
create table payment_p2026 () inherits (payment);
insert into payment values (1, 1.5), (2, 2.5);
insert into payment_p2026 values (3, 3.5), (4, 4.5), (5, 5.5);
-- declarative partitioning: the parent has no rows of its own
create table events (at date not null, what text) partition by range (at);
create table events_2026 partition of events for values from ('2026-01-01') to ('2027-01-01');
insert into events select date '2026-01-01' + g, 'e' from generate_series(0, 9) g;
`;

/** Builds sakila_<stamp>.dump with a throwaway PostgreSQL 15 server; returns its folder. */
function buildDump(): string {
  const work = mkdtempSync(join(tmpdir(), "attest-good-"));
  chmodSync(work, 0o755);
  const data = join(work, "data");
  const out = join(work, "dumps");
  mkdirSync(out, { mode: 0o755 });
  execFileSync("chown", ["postgres", work, out]);
  const asPg = (cmd: string, args: string[], input?: string) =>
    execFileSync("runuser", ["-u", "postgres", "--", join(PGBIN, cmd), ...args], {
      stdio: ["pipe", "pipe", "pipe"],
      ...(input ? { input } : {}),
    });
  asPg("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  asPg("pg_ctl", [
    "-D",
    data,
    "-l",
    join(work, "log"),
    "-w",
    "-t",
    "60",
    "-o",
    `-c listen_addresses='' -k ${work}`,
    "start",
  ]);
  try {
    asPg("createdb", ["-h", work, "-U", "postgres", "sakila"]);
    asPg(
      "psql",
      ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", work, "-U", "postgres", "-d", "sakila", "-f", "-"],
      SQL,
    );
    asPg("pg_dump", [
      "-h",
      work,
      "-U",
      "postgres",
      "-Fc",
      "-f",
      join(out, "sakila_20261120T0300.dump"),
      "sakila",
    ]);
  } finally {
    asPg("pg_ctl", ["-D", data, "-w", "-m", "fast", "stop"]);
  }
  chmodSync(join(out, "sakila_20261120T0300.dump"), 0o644);
  rmSync(data, { recursive: true, force: true });
  return work;
}

let work = "";
beforeAll(() => {
  work = buildDump();
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.each(selectedRuntimes())("a good dump with sample-database traits in the %s runtime", (runtime) => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("passes, skips the WITH NO DATA matview with a note, counts rows once", async () => {
    const ws = workspace(
      (dir) =>
        `${sandboxYaml(runtime)}\nsources: [{ name: sakila, type: dump-dir, path: ${work}/dumps }]\nhistory: { csv: ${dir}/reports/history.csv }\nreports: { dir: ${dir}/reports }\n`,
    );
    dirs.push(ws.dir);
    const r = await attest(["drill", "--config", ws.config, "--source", "sakila", "--json", "--no-mail"]);
    const doc = JSON.parse(r.stdout) as RunResult;
    expect(leftovers(runtime, doc.run.id)).toEqual([]);
    const d = doc.drills[0]!;
    expect(d.verdict, `${d.reason}\n${r.stderr.slice(-1500)}`).toBe("pass");
    expect(r.code).toBe(0);
    const fullRead = d.checks.find((c) => c.name === "full_read")!;
    expect(fullRead.status).toBe("pass");
    expect(fullRead.detail).toMatch(/; 1 materialized view\(s\) not populated \(WITH NO DATA\), skipped$/);
    // 40 films + 40 in the populated matview + 2 + 3 payments + 10 events, none twice
    expect(fullRead.detail).toMatch(/^read 95 rows in 5 tables;/);

    const ev = JSON.parse(readFileSync(join(ws.dir, "reports", d.evidence!), "utf8")) as {
      inventory: Inventory;
    };
    const db = ev.inventory.databases.find((x) => x.name === "sakila")!;
    expect(db.tables).toEqual([
      { name: "public.events", rows: 0, kind: "partitioned" },
      { name: "public.events_2026", rows: 10 },
      { name: "public.film", rows: 40 },
      { name: "public.payment", rows: 2, kind: "parent" },
      { name: "public.payment_p2026", rows: 3 },
    ]);
    expect(db.matviews).toEqual(["public.film_titles", "public.rental_by_category"]);
  });
});

describe("a bad dump, for contrast", () => {
  it("fails, and its failed restore keeps the time it took", async () => {
    const ws = workspace(
      (dir) =>
        `${sandboxYaml(selectedRuntimes()[0]!)}\nsources: [{ name: bad, type: dump-dir, path: ${DUMPS}/damaged, include: ["app_flipped.dump"] }]\nhistory: { csv: ${dir}/reports/history.csv }\nreports: { dir: ${dir}/reports }\n`,
    );
    try {
      const r = await attest(["drill", "--config", ws.config, "--source", "bad", "--json", "--no-mail"]);
      const doc = JSON.parse(r.stdout) as RunResult;
      expect(leftovers(selectedRuntimes()[0]!, doc.run.id)).toEqual([]);
      const d = doc.drills[0]!;
      expect(d.verdict, d.reason).toBe("fail");
      expect(r.code).toBe(1);
      // a flipped byte in compressed data passes every check of the TOC: the restore ran until
      // pg_restore gave up, and that time is evidence too (not 0)
      expect(d.timings.restoreMs).toBeGreaterThan(0);
      expect(d.timings.totalMs).toBeGreaterThanOrEqual(d.timings.provisionMs + d.timings.restoreMs);
    } finally {
      rmSync(ws.dir, { recursive: true, force: true });
    }
  });
});
