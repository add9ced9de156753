/** The plain-dump guard must see every meta-command psql would run, and nothing that psql would not. */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createGuardStream } from "../src/restore/logical/guard-stream.js";
import { SqlScanner } from "../src/restore/logical/sql-scanner.js";

const scan = (text: string) => {
  const s = new SqlScanner();
  for (const l of text.split("\n")) s.line(l);
  return s;
};

describe("SqlScanner", () => {
  it("allows what genuine pg_dump output contains", () => {
    const s = scan(
      "\\restrict abc\nSET standard_conforming_strings = on;\nCOPY t (a) FROM stdin;\n\\! inside copy data is data\n\\.\n\\connect app\n\\unrestrict abc",
    );
    expect(s.forbidden).toBeUndefined();
    expect(s.metaCommands.map((m) => m.command)).toEqual(["restrict", "connect", "unrestrict"]);
  });

  it.each([
    ["at a line start", "\\! touch /tmp/x", 1],
    ["after a statement on the same line", "select 1; \\! id", 1],
    ["after a closed string", "select 'a'; \\! id", 1],
    ["after a closed dollar quote", "select $$ x $$; \\! id", 1],
    ["after a block comment", "/* a */ \\! id", 1],
    ["after COPY data ended", "COPY t FROM stdin;\n1\n\\.\n\\! id", 4],
    ["copy ends and the next line is a shell", "COPY t (a) FROM stdin;\n\\.\n\\setenv X 1", 3],
    ["an E'' string ending in an escaped quote then a shell", "select E'a\\'b'; \\! id", 1],
    ["a \\copy that reads host files", "\\copy t from '/etc/shadow'", 1],
    ["\\i that includes host files", "\\i /etc/passwd", 1],
  ])("refuses a meta-command %s", (_why, text, line) => {
    const s = scan(text);
    expect(s.forbidden?.line).toBe(line);
  });

  it.each([
    ["inside a single-quoted string", "select '\\! not a command';"],
    ["inside a multi-line string", "select 'line one\n\\! still the string\n';"],
    [
      "inside a dollar-quoted body",
      "create function f() returns int as $body$\n\\! no\nselect 1 $body$ language sql;",
    ],
    ["inside a tagged dollar quote with $$ inside", "do $x$ begin perform $$ \\! $$; end $x$;"],
    ["inside a block comment", "/* \\! nested /* \\! */ \\! */ select 1;"],
    ["inside a line comment", "select 1; -- \\! nothing"],
    ["inside a quoted identifier", 'create table "\\!" (a int);'],
    ["a regex in a check constraint", "alter table t add check (email ~ '^\\S+@\\S+$');"],
  ])("does not flag a backslash %s", (_why, text) => {
    expect(scan(text).forbidden).toBeUndefined();
  });

  it("treats backslashes in strings as escapes once standard_conforming_strings is off", () => {
    // with the setting off, 'a\' does not end the string, so psql sees no command here
    expect(scan("SET standard_conforming_strings = off;\nselect 'a\\'; \\! id';").forbidden).toBeUndefined();
    // with it on, the same text ends the string and runs the shell
    expect(scan("select 'a\\'; \\! id';").forbidden?.command).toBe("!");
  });

  it.each([
    ["COPY … TO PROGRAM", "COPY (select 1) TO PROGRAM 'id';", "defect", /COPY … PROGRAM/],
    ["COPY … FROM PROGRAM over two lines", "COPY t FROM\n  PROGRAM 'curl x';", "defect", /COPY … PROGRAM/],
    ["ALTER SYSTEM", "ALTER SYSTEM SET archive_command = 'x';", "defect", /ALTER SYSTEM/],
    ["a DO block", "DO $$ begin perform 1; end $$;", "defect", /anonymous code block/],
    [
      "a top-level call of lo_export",
      "SELECT lo_export(16401, '/tmp/x');",
      "defect",
      /calling lo_export\(\)/,
    ],
    [
      "a top-level call of pg_read_file",
      "select pg_catalog.pg_read_file('/etc/shadow');",
      "defect",
      /calling pg_read_file\(\)/,
    ],
    [
      "a C function outside $libdir",
      "CREATE FUNCTION f() RETURNS int LANGUAGE c AS '/tmp/evil.so', 'f';",
      "refuse",
      /loading \/tmp\/evil.so/,
    ],
  ])("flags %s", (_what, sql, kind, reason) => {
    const h = scan(`SET x = 1;\n${sql}`).hazard;
    expect(h?.kind).toBe(kind);
    expect(h?.reason).toMatch(reason);
    expect(h?.line).toBe(2);
  });

  it.each([
    [
      "pg_dump's own top-level SELECTs",
      "SELECT pg_catalog.set_config('search_path', '', false);\nSELECT pg_catalog.setval('s', 5, true);\nSELECT pg_catalog.lo_create('16401');",
    ],
    ["a C function from $libdir", "CREATE FUNCTION f() RETURNS int LANGUAGE c AS '$libdir/mylib', 'f';"],
    ["PROGRAM inside a string", "COMMENT ON TABLE t IS 'COPY x TO PROGRAM y';"],
    [
      "PROGRAM inside a function body",
      "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ begin execute format('copy t to program %L', 'x'); end $$;",
    ],
    ["a view that selects a function", "CREATE VIEW v AS SELECT pg_read_file('x');"],
    ["COPY data that looks like SQL", "COPY t (a) FROM stdin;\nDO $$ x $$;\n\\."],
  ])("does not flag %s", (_what, sql) => {
    expect(scan(sql).hazard).toBeUndefined();
  });

  it("collects the roles a dump refers to", () => {
    const s = scan(
      'ALTER TABLE public.t OWNER TO app_owner;\nGRANT SELECT ON TABLE public.t TO app_reader, "Mixed Case";\nREVOKE ALL ON SCHEMA public FROM PUBLIC;\nALTER DEFAULT PRIVILEGES FOR ROLE etl IN SCHEMA s GRANT SELECT ON TABLES TO reporting;\nCREATE SCHEMA s AUTHORIZATION schema_owner;',
    );
    expect([...s.roles].sort()).toEqual([
      "Mixed Case",
      "app_owner",
      "app_reader",
      "etl",
      "reporting",
      "schema_owner",
    ]);
  });
});

describe("createGuardStream", () => {
  const through = async (text: string, restrictKey?: string) => {
    const chunks: string[] = [];
    const guard = createGuardStream({ file: "x.sql", ...(restrictKey ? { restrictKey } : {}) });
    // one byte at a time: line and UTF-8 boundaries must not matter
    Readable.from(
      Buffer.from(text)
        .toString("latin1")
        .split("")
        .map((c) => Buffer.from(c, "latin1")),
    ).pipe(guard);
    for await (const c of guard) chunks.push(String(c));
    return chunks.join("");
  };

  it("passes SQL through unchanged, multibyte characters included", async () => {
    const sql = "select 'ünïcødé ✓';\nCOPY t FROM stdin;\n\\N\tå\n\\.\n";
    expect(await through(sql)).toBe(sql);
  });

  it("wraps in psql's restricted mode and drops the dump's own restrict lines", async () => {
    expect(await through("\\restrict k1\nselect 1;\n\\unrestrict k1\n", "ours")).toBe(
      "\\restrict ours\n\nselect 1;\n\n",
    );
  });

  it("fails the stream before forwarding a forbidden line", async () => {
    await expect(through("select 1;\n\\! touch /tmp/pwned\nselect 2;\n")).rejects.toThrow(
      /meta-command \\! at line 2/,
    );
  });
});
