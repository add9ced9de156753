/**
 * Full pg_dumpall files, series named after the dumped database, and pg_dump 8.x's plpgsql,
 * drilled by the real CLI in every runtime (fixtures/build-dumpall.sh: real pg_dumpall and
 * pg_dump output of databases named `shop.prod` and `my "odd" db ü`; fixtures/samples/: a
 * plain dump in pg_dump 8.4's exact statements).
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "./support/cli.js";
import { drillSuite, selectedRuntimes } from "./support/runtimes.js";

const OUT = join(ROOT, "fixtures", "generated", "dumpall");
const SAMPLE = join(ROOT, "fixtures", "samples", "pg84-library.sql");
const CLUSTER = join(OUT, "cluster", "prod-cluster_20261120T0300.sql");
const ODD = 'my "odd" db ü';
/** Edited copies of the genuine files, each a way the restore must still stop. */
const edited = mkdtempSync(join(tmpdir(), "attest-dumpall-"));
/** The genuine file with the `\connect postgres` pg_dumpall up to 9.x writes before its roles. */
const oldStyle = mkdtempSync(join(tmpdir(), "attest-dumpall-old-"));
/** A pg_dumpall 8.4 file, put together as pg_dumpall 8.4 writes one around the pg_dump 8.4 sample. */
const pg84 = mkdtempSync(join(tmpdir(), "attest-dumpall-84-"));

/** pg_dump 8.4's output for a database that holds nothing but its comment and public's ACL. */
function emptyDb84(db: string, comment: string): string {
  return `--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = off;
SET check_function_bodies = false;
SET client_min_messages = warning;
SET escape_string_warning = off;

--
-- Name: ${db}; Type: COMMENT; Schema: -; Owner: postgres
--

COMMENT ON DATABASE ${db} IS '${comment}';


--
-- Name: public; Type: ACL; Schema: -; Owner: postgres
--

REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM postgres;
GRANT ALL ON SCHEMA public TO postgres;
GRANT ALL ON SCHEMA public TO PUBLIC;


--
-- PostgreSQL database dump complete
--

`;
}

/** The sample inside a pg_dumpall 8.4 file: roles, CREATE DATABASE from template0, each database after its \connect. */
function cluster84(sample: string): string {
  return `--
-- PostgreSQL database cluster dump
--

\\connect postgres

SET client_encoding = 'UTF8';
SET standard_conforming_strings = off;
SET escape_string_warning = off;

--
-- Roles
--

CREATE ROLE librarian;
ALTER ROLE librarian WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN;






--
-- Database creation
--

CREATE DATABASE library WITH TEMPLATE = template0 OWNER = postgres ENCODING = 'UTF8';
REVOKE ALL ON DATABASE template1 FROM PUBLIC;
REVOKE ALL ON DATABASE template1 FROM postgres;
GRANT ALL ON DATABASE template1 TO postgres;
GRANT CONNECT ON DATABASE template1 TO PUBLIC;


\\connect library

${sample}
\\connect postgres

${emptyDb84("postgres", "default administrative connection database")}\\connect template1

${emptyDb84("template1", "default template database")}--
-- PostgreSQL database cluster dump complete
--

`;
}

/** `text` with `extra` put on the line after the first line that is exactly `after`. */
function insertAfter(text: string, after: string, extra: string): string {
  const at = text.indexOf(`\n${after}\n`);
  if (at < 0) throw new Error(`no line ${after}`);
  const end = at + after.length + 2;
  return `${text.slice(0, end)}${extra}\n${text.slice(end)}`;
}

beforeAll(() => {
  execFileSync("bash", [join(ROOT, "fixtures", "build-dumpall.sh"), OUT], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  chmodSync(edited, 0o755);
  chmodSync(oldStyle, 0o755);
  chmodSync(pg84, 0o755);
  const cluster = readFileSync(CLUSTER, "utf8");
  const header = "--\n-- PostgreSQL database cluster dump\n--\n\n";
  if (!cluster.startsWith(header)) throw new Error("no pg_dumpall header");
  writeFileSync(
    join(oldStyle, "old-cluster.sql"),
    `${header}\\connect postgres\n\n${cluster.slice(header.length)}`,
  );
  const sample = readFileSync(SAMPLE, "utf8");
  writeFileSync(join(pg84, "library-cluster_20100301T0300.sql"), cluster84(sample));
  writeFileSync(
    join(edited, "pg84_other_exists.sql"),
    insertAfter(sample, "CREATE PROCEDURAL LANGUAGE plpgsql;", "CREATE SCHEMA public;"),
  );
  const noTable = sample.replace(/\nCREATE TABLE books \([^;]*\);\n/, "\n");
  if (noTable === sample) throw new Error("no CREATE TABLE books in the sample");
  writeFileSync(join(edited, "pg84_no_table.sql"), noTable);
  writeFileSync(
    join(edited, "cluster_other_role_error.sql"),
    insertAfter(readFileSync(CLUSTER, "utf8"), "CREATE ROLE postgres;", "ALTER ROLE nobody_here WITH LOGIN;"),
  );
}, 120_000);

afterAll(() => {
  rmSync(edited, { recursive: true, force: true });
  rmSync(oldStyle, { recursive: true, force: true });
  rmSync(pg84, { recursive: true, force: true });
});

describe.each(selectedRuntimes())("pg_dumpall files and dump series in the %s runtime", (runtime) => {
  const { config, run } = drillSuite(runtime);
  const audit = (cfg: string) => run(["audit", "--config", cfg]);

  it("drills a full pg_dumpall file, plain and gzipped, as one backup of the cluster: its roles and every database by its own name", async () => {
    const ws = config(`
sources:
  - name: cluster
    type: dump-dir
    path: ${OUT}/cluster
    select: all
    checks:
      queries:
        - { name: orders, database: shop.prod, sql: "select count(*) from public.orders", expect: "= 1200" }
        - { name: odd names, database: '${ODD}', sql: 'select string_agg(name, ''/'' order by id) from "Straße"."Kunden.Liste"', expect: "= José Müller/Zoë Ångström/Œdipe" }
        - { name: roles, database: postgres, sql: "select string_agg(rolname, ',' order by rolname) from pg_roles where rolname !~ '^pg_'", expect: "= Report Reader,postgres,shop_owner" }
        - { name: tablespaces, database: shop.prod, sql: "select string_agg(c.relname || '@' || coalesce(t.spcname, '-'), ',' order by c.relname) from pg_class c left join pg_tablespace t on t.oid = c.reltablespace where c.relname in ('hot', 'orders')", expect: "= hot@fast disk,orders@-" }
        - { name: cold, database: cold.archive, sql: "select count(*)::text || '@' || (select spcname from pg_tablespace t join pg_database d on d.dattablespace = t.oid where d.datname = current_database()) from public.years", expect: "= 36@cold" }
        - { name: grant, database: shop.prod, sql: "select has_table_privilege('Report Reader', 'public.orders', 'SELECT')::text", expect: "= true" }`);
    const { code, doc, stderr } = await audit(ws.config);
    expect(Object.fromEntries(doc.drills.map((d) => [d.backup.id, d.series]))).toEqual({
      "prod-clean_20261120T0300.sql": "prod-clean",
      "prod-cluster_20261120T0300.sql": "prod-cluster",
      "prod-cluster_20261120T0300.sql.gz": "prod-cluster",
    });
    for (const d of doc.drills) {
      expect(d.verdict, `${d.backup.id}: ${d.reason} ${stderr.slice(-800)}`).toBe("pass");
      expect(d.checks.filter((c) => c.name.startsWith("query:")).map((c) => c.status)).toEqual([
        "pass",
        "pass",
        "pass",
        "pass",
        "pass",
        "pass",
      ]);
      const amcheck = d.checks.find((c) => c.name === "amcheck");
      expect(amcheck?.status).toBe("pass");
      expect(amcheck?.detail).toContain(`clean in cold.archive, ${ODD}, postgres, shop.prod`);
      // made inside the sandbox, never at the host paths the file names
      expect(d.notes).toContain(
        "created tablespace(s) cold, fast disk inside the sandbox for the objects the dump places there",
      );
      if (d.series === "prod-clean") continue;
      expect(d.notes).toContain(
        'errors psql printed loading the roles section, forgiven by name: role "postgres" already exists (the sandbox has it from the start: its bootstrap superuser or a built-in role); tablespace "fast disk" already exists (made inside the sandbox before the restore); tablespace "cold" already exists (made inside the sandbox before the restore)',
      );
    }
    // --clean drops what it creates: each DROP forgiven at its own line, the sandbox's tablespaces kept
    const clean = doc.drills.find((d) => d.series === "prod-clean")!.notes.join("\n");
    expect(clean).toMatch(
      /forgiven by name: database "cold\.archive" does not exist \(pg_dumpall --clean drops it before creating it; a fresh sandbox has none\);/,
    );
    expect(clean).toContain(
      "current user cannot be dropped (pg_dumpall --clean drops it before creating it; it is the sandbox's own superuser)",
    );
    expect(clean).toContain("its DROP TABLESPACE of cold, fast disk (pg_dumpall --clean) was left out");
    expect(code).toBe(0);
  });

  it("drills a pg_dumpall file that connects to postgres before its roles, as pg_dumpall up to 9.x writes", async () => {
    const ws = config(`
sources:
  - name: old
    type: dump-dir
    path: ${oldStyle}`);
    const { code, doc, stderr } = await audit(ws.config);
    expect(doc.drills).toHaveLength(1);
    const d = doc.drills[0]!;
    expect(d.verdict, `${d.reason} ${stderr.slice(-800)}`).toBe("pass");
    expect(d.checks.find((c) => c.name === "amcheck")?.detail).toContain(
      `clean in cold.archive, ${ODD}, postgres, shop.prod`,
    );
    expect(d.notes.join("\n")).toMatch(/forgiven by name: role "postgres" already exists/);
    expect(code).toBe(0);
  });

  it("drills a pg_dumpall 8.4 file, whose databases each create plpgsql, with a note", async () => {
    const ws = config(`
sources:
  - name: old84
    type: dump-dir
    path: ${pg84}
    checks:
      queries:
        - { name: books, database: library, sql: "select string_agg(title_upper(title), '|' order by id) from public.books where published is not null", expect: "= DIE BLECHTROMMEL|CIEN AÑOS DE SOLEDAD|L'ÉTRANGER" }
        - { name: comment, database: postgres, sql: "select pg_catalog.shobj_description(oid, 'pg_database') from pg_catalog.pg_database where datname = 'template1'", expect: "= default template database" }`);
    const { code, doc, stderr } = await audit(ws.config);
    expect(doc.drills).toHaveLength(1);
    const d = doc.drills[0]!;
    expect(d.verdict, `${d.reason} ${stderr.slice(-800)}`).toBe("pass");
    expect(d.checks.filter((c) => c.name.startsWith("query:")).map((c) => c.status)).toEqual([
      "pass",
      "pass",
    ]);
    expect(d.notes.join("\n")).toContain(
      "plpgsql was dropped from template0 (which CREATE DATABASE … TEMPLATE template0 copies), template1, postgres first",
    );
    expect(code).toBe(0);
  });

  it("fails a pg_dumpall file cut inside a database or just before its cluster footer", async () => {
    const ws = config(`
sources:
  - name: cut
    type: dump-dir
    path: ${OUT}/cutoff
    select: all`);
    const { code, doc } = await audit(ws.config);
    const byId = Object.fromEntries(doc.drills.map((d) => [d.backup.id, d]));
    expect(Object.keys(byId).sort()).toEqual(["prod-cluster_cut_copy.sql", "prod-cluster_cut_footer.sql"]);
    for (const d of doc.drills) expect(d.verdict, `${d.backup.id}: ${d.reason}`).toBe("fail");
    expect(byId["prod-cluster_cut_copy.sql"]!.reason).toMatch(
      /^dump is cut off: no completion footer \(cut inside the data of the COPY at line \d+: "COPY "Straße"\."Kunden\.Liste"/,
    );
    expect(byId["prod-cluster_cut_footer.sql"]!.reason).toMatch(
      /^dump is cut off: no completion footer \(last statement at line \d+: "GRANT SELECT ON TABLE public\.orders TO "Report Reader""\)$/,
    );
    expect(code).toBe(1);
  });

  it("makes one series of a database's archives and plain dumps, restored under the database's own name; a plain dump that names no database is named after its file and says so", async () => {
    const ws = config(`
sources:
  - name: series
    type: dump-dir
    path: ${OUT}/series
    select: all
    checks:
      queries:
        - { name: odd names, database: '${ODD}', sql: 'select count(*) from "Straße"."Kunden.Liste"', expect: "= 3" }
        - { name: lonely, database: lonely, sql: "select count(*) from public.orders", expect: "= 1200" }`);
    const { code, doc, stderr } = await audit(ws.config);
    const byId = Object.fromEntries(doc.drills.map((d) => [d.backup.id, d]));
    expect(Object.fromEntries(doc.drills.map((d) => [d.backup.id, d.series]))).toEqual({
      "lonely_20261120T0300.sql": "lonely",
      "weird-create_20261120T0300.sql": ODD,
      "weird_20261120T0300.dir": ODD,
      "weird_20261120T0300.dump": ODD,
      "weird_20261120T0300.sql": ODD,
    });
    for (const d of doc.drills) {
      expect(d.verdict, `${d.backup.id}: ${d.reason} ${stderr.slice(-800)}`).toBe("pass");
      // each query runs where its database was restored, and only there
      expect(
        d.checks.filter((c) => c.name.startsWith("query:") && c.status === "pass"),
        d.backup.id,
      ).toHaveLength(1);
    }
    expect(byId["weird_20261120T0300.sql"]!.notes).toContain(
      `restored as database ${JSON.stringify(ODD)}, the database weird_20261120T0300.dir of the same file name was dumped from: this plain dump was made without -C and does not name its own`,
    );
    expect(byId["lonely_20261120T0300.sql"]!.notes).toContain(
      'restored as database "lonely", named after the file: this plain dump was made without -C and does not name its database',
    );
    expect(byId["weird_20261120T0300.dump"]!.notes.join(" ")).not.toMatch(/named after the file/);
    expect(code).toBe(0);
  });

  it("passes pg_dump 8.x plain dumps, with and without -C, whose CREATE PROCEDURAL LANGUAGE plpgsql meets a database without plpgsql, with a note", async () => {
    const books = (db: string) =>
      `{ name: books ${db}, database: ${db}, sql: "select string_agg(title_upper(title) || '/' || author, '|' order by id) from public.books where published is not null", expect: "= DIE BLECHTROMMEL/Günter Grass|CIEN AÑOS DE SOLEDAD/Gabriel García Márquez|L'ÉTRANGER/Albert Camus" }`;
    const ws = config(`
sources:
  - name: old
    type: dump-dir
    path: ${ROOT}/fixtures/samples
    include: ["pg84-library*.sql"]
    select: all
    checks:
      queries:
        - ${books("pg84-library")}
        - ${books("library")}
        - { name: backslash, database: pg84-library, sql: "select title = E'Back\\\\\\\\slash and tab\\\\there' from public.books where id = 4", expect: "= true" }`);
    const { code, doc, stderr } = await audit(ws.config);
    const byId = Object.fromEntries(doc.drills.map((d) => [d.backup.id, d]));
    expect(Object.fromEntries(doc.drills.map((d) => [d.backup.id, d.series]))).toEqual({
      "pg84-library-create.sql": "library",
      "pg84-library.sql": "pg84-library",
    });
    for (const d of doc.drills)
      expect(d.verdict, `${d.backup.id}: ${d.reason} ${stderr.slice(-800)}`).toBe("pass");
    const ran = (id: string) =>
      byId[id]!.checks.filter((c) => c.name.startsWith("query:") && c.status === "pass").map((c) => c.name);
    expect(ran("pg84-library.sql")).toEqual(["query: books pg84-library", "query: backslash"]);
    expect(ran("pg84-library-create.sql")).toEqual(["query: books library"]);
    const note =
      /the dump creates plpgsql itself \(CREATE PROCEDURAL LANGUAGE plpgsql, as pg_dump 8\.x writes; .*"already exists".*\): plpgsql was dropped from (.*) first/;
    expect(byId["pg84-library.sql"]!.notes.join("\n")).toMatch(note);
    expect(note.exec(byId["pg84-library.sql"]!.notes.join("\n"))![1]).toBe("the fresh database");
    expect(note.exec(byId["pg84-library-create.sql"]!.notes.join("\n"))![1]).toBe(
      "template0, which the dump's CREATE DATABASE copies,",
    );
    expect(code).toBe(0);
  });

  it("still stops at any other error: another 'already exists', a missing table, another error in a pg_dumpall roles section", async () => {
    const ws = config(`
sources:
  - name: edited
    type: dump-dir
    path: ${edited}
    select: all`);
    const { code, doc } = await audit(ws.config);
    const byId = Object.fromEntries(doc.drills.map((d) => [d.backup.id, d]));
    expect(Object.keys(byId).sort()).toEqual([
      "cluster_other_role_error.sql",
      "pg84_no_table.sql",
      "pg84_other_exists.sql",
    ]);
    for (const d of doc.drills) expect(d.verdict, `${d.backup.id}: ${d.reason}`).toBe("fail");
    expect(byId["pg84_other_exists.sql"]!.reason).toMatch(
      /^psql failed: .*ERROR: {2}schema "public" already exists/,
    );
    expect(byId["pg84_no_table.sql"]!.reason).toMatch(
      /^psql failed: .*ERROR: {2}relation "public\.books" does not exist/,
    );
    expect(byId["cluster_other_role_error.sql"]!.reason).toMatch(
      /^psql failed: .*ERROR: {2}role "nobody_here" does not exist/,
    );
    expect(code).toBe(1);
  });
});
