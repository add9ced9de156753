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

/** A pg_dump 15.18 plain dump's frame around `body` (header, \restrict, footer, \unrestrict). */
const dump15 = (body: string, footer = true) =>
  `--\n-- PostgreSQL database dump\n--\n\n\\restrict k1\n\nSET client_encoding = 'UTF8';\n${body}\n${footer ? "--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict k1\n\n" : ""}`;

const scanBytes = (bytes: Buffer, opts: { maxLineBytes?: number } = {}) => {
  const s = new SqlScanner(opts);
  // odd chunk sizes: lookahead across chunk boundaries must not matter
  for (let i = 0; i < bytes.length; i += 7) s.write(bytes.subarray(i, i + 7));
  s.end();
  return s;
};

describe("SqlScanner: completion footer", () => {
  it("accepts a complete dump, with pg_dump 15.18's \\unrestrict after the footer", () => {
    expect(scanBytes(Buffer.from(dump15("CREATE TABLE t (a int);"))).cutOff).toBeUndefined();
  });

  it("accepts an old pg_dump's dump (8.x/9.x: no \\restrict, the same footer)", () => {
    const old =
      "--\n-- PostgreSQL database dump\n--\n\nSET client_encoding = 'LATIN1';\nCREATE TABLE t (a int);\n\n--\n-- PostgreSQL database dump complete\n--\n\n";
    expect(scanBytes(Buffer.from(old)).cutOff).toBeUndefined();
  });

  it("calls a dump without its footer cut off, naming the last statement", () => {
    const s = scanBytes(Buffer.from(dump15("CREATE TABLE t (a int);\nALTER TABLE t OWNER TO app;", false)));
    expect(s.cutOff).toBe(
      'dump is cut off: no completion footer (last statement at line 9: "ALTER TABLE t OWNER TO app")',
    );
  });

  it("calls a dump cut inside COPY data cut off, naming the COPY", () => {
    const s = scanBytes(Buffer.from(dump15("COPY public.t (a) FROM stdin;\n1\n2", false)));
    expect(s.cutOff).toMatch(/cut inside the data of the COPY at line 8: "COPY public\.t \(a\) FROM stdin"/);
  });

  it("does not take a footer followed by more SQL for the end", () => {
    const s = scanBytes(Buffer.from(`${dump15("SELECT 1;")}CREATE TABLE late (a int);\n`));
    expect(s.cutOff).toMatch(/no completion footer \(last statement at line \d+: "CREATE TABLE late/);
  });

  it("wants pg_dumpall's cluster footer, not the last database's footer", () => {
    const cluster = `--\n-- PostgreSQL database cluster dump\n--\n\nCREATE ROLE app;\n\\connect template1\n${dump15("SELECT 1;")}`;
    expect(scanBytes(Buffer.from(cluster)).cutOff).toMatch(/^dump is cut off/);
    const whole = `${cluster}--\n-- PostgreSQL database cluster dump complete\n--\n\n`;
    expect(scanBytes(Buffer.from(whole)).cutOff).toBeUndefined();
  });

  it("does not judge SQL that is not pg_dump output", () => {
    expect(scanBytes(Buffer.from("select 1;\n")).cutOff).toBeUndefined();
  });
});

describe("SqlScanner: bytes, encodings and bounds", () => {
  it("reads names in the dump's client_encoding (LATIN1 bytes stay LATIN1)", () => {
    const latin1 = Buffer.from(
      "SET client_encoding = 'LATIN1';\nALTER TABLE t OWNER TO \"Müller\";\nSELECT 'café';\n",
      "latin1",
    );
    const s = scanBytes(latin1);
    expect([...s.roles]).toEqual(["Müller"]);
    expect(s.encoding).toBe("LATIN1");
    expect(s.hazard).toBeUndefined();
  });

  /** `SET client_encoding` then `rest`, with `{X}` replaced by the raw bytes `x`. */
  const declared = (enc: string, rest: string, x: number[]) =>
    Buffer.concat(
      `SET client_encoding = '${enc}';\n${rest}`
        .split("{X}")
        .flatMap((part, i) => (i ? [Buffer.from(x), Buffer.from(part)] : [Buffer.from(part)])),
    );

  it.each([
    ["SJIS", [0x95, 0x5c]], // 表
    ["SHIFT_JIS_2004", [0x83, 0x5c]], // ソ
    ["BIG5", [0xa5, 0x5c]], // 功
    ["GBK", [0x81, 0x5c]],
    ["UHC", [0x81, 0x5c]],
    ["GB18030", [0x81, 0x5c]],
    ["JOHAB", [0x88, 0x5c]],
  ])("reads %s characters whole: a trail byte 0x5C is no backslash", (enc, x) => {
    // unquoted, psql lexes the character as part of a name, not as a meta-command
    const ok = scanBytes(declared(enc, "SELECT 1 AS a{X};\nSELECT E'{X}';\n", x));
    expect(ok.metaCommands).toEqual([]);
    expect(ok.hazard).toBeUndefined();
    // in an escape string the trail byte escapes nothing: the string ends, and psql runs \!
    const hidden = scanBytes(declared(enc, "SELECT E'{X}'; \\! id\n", x));
    expect(hidden.forbidden?.command).toBe("!");
    expect(hidden.forbidden?.line).toBe(2);
  });

  it("reads GB18030's four-byte characters whole, across chunk boundaries", () => {
    // 0x81 0x30 0x81 0x5C is not a character, but psql takes four bytes after a lead and a digit
    const s = scanBytes(declared("GB18030", "SELECT E'a{X}';\nSELECT 1;\n", [0x81, 0x30, 0x81, 0x5c]));
    expect(s.metaCommands).toEqual([]);
    expect(s.hazard).toBeUndefined();
  });

  it("ends a character at the end of its line, as psql does", () => {
    const s = scanBytes(declared("SJIS", "SELECT 1 AS a{X}\n\\! id\n", [0x95]));
    expect(s.forbidden?.command).toBe("!");
    expect(s.forbidden?.line).toBe(3);
  });

  it("switches the encoding from the next line, as psql's line-by-line lexer does", () => {
    const sameLine = Buffer.concat([
      Buffer.from("SET client_encoding = 'SJIS'; SELECT 1 AS a"),
      Buffer.from([0x95, 0x5c]),
      Buffer.from(";\n"),
    ]);
    expect(scanBytes(sameLine).metaCommands.map((m) => m.command)).toEqual([";"]);
    // back to UTF8: the same bytes are a backslash again from the line after
    const back = declared("SJIS", "SET client_encoding = 'UTF8';\nSELECT 1 AS a{X};\n", [0x95, 0x5c]);
    expect(scanBytes(back).metaCommands.map((m) => m.line)).toEqual([3]);
  });

  it("decodes SJIS names for roles and messages", () => {
    const s = scanBytes(declared("SJIS", 'ALTER TABLE t OWNER TO "{X}";\n', [0x95, 0x5c, 0x83, 0x5c]));
    expect([...s.roles]).toEqual(["表ソ"]);
    expect(s.encoding).toBe("SJIS");
  });

  it("still sees a call after a 32 KiB lowrite() literal, and none inside it", () => {
    const hex = "ab".repeat(16384);
    const ok = scanBytes(Buffer.from(`SELECT pg_catalog.lowrite(0, '\\x${hex} evil(1)');\n`));
    expect(ok.hazard).toBeUndefined();
    const bad = scanBytes(Buffer.from(`SELECT pg_catalog.lowrite(0, '\\x${hex}'), evil(1);\n`));
    expect(bad.hazard?.reason).toBe("a top-level statement calling evil()");
  });

  it("stops at a line longer than the limit outside COPY data, without buffering it", () => {
    const s = new SqlScanner({ maxLineBytes: 1 << 20 });
    const block = Buffer.alloc(64 * 1024, 0x61);
    s.write(Buffer.from("SELECT '"));
    for (let i = 0; i < 64; i++) s.write(block); // 4 MiB, no newline
    s.end();
    expect(s.hazard?.message).toMatch(/^line 1 is longer than 1 MiB outside COPY data/);
    expect(s.pos).toBeLessThan((1 << 20) + 2 * block.length);
  });

  it("lets COPY data lines be long (a large bytea), up to what PostgreSQL can load", () => {
    const s = new SqlScanner({ maxLineBytes: 1 << 20 });
    s.write(Buffer.from("COPY t (b) FROM stdin;\n\\\\x"));
    const block = Buffer.alloc(64 * 1024, 0x61);
    for (let i = 0; i < 64; i++) s.write(block);
    s.write(Buffer.from("\n\\.\nSELECT 1;\n"));
    s.end();
    expect(s.hazard).toBeUndefined();
  });

  it.each([
    [
      "pg_dump 18's relation statistics",
      "SELECT * FROM pg_catalog.pg_restore_relation_stats('version', '180000'::integer, 'schemaname', 'public', 'relname', 't', 'relpages', '1'::integer);",
    ],
    [
      "pg_dump 18's attribute statistics",
      "SELECT * FROM pg_catalog.pg_restore_attribute_stats('version', '180000'::integer, 'schemaname', 'public', 'relname', 't', 'attname', 'a', 'inherited', 'f'::boolean);",
    ],
    [
      "pg_dump 8.1's serial setval",
      "SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('t', 'id'), 5, true);",
    ],
  ])("allows %s", (_what, sql) => {
    expect(scan(sql).hazard).toBeUndefined();
  });

  it("flags SQL after COPY … FROM stdin on its own line (psql runs it after the data)", () => {
    expect(scan("COPY t (a) FROM stdin; DROP TABLE x;\n1\n\\.").hazard?.reason).toMatch(
      /after COPY … FROM stdin/,
    );
  });
});

describe("SqlScanner: \\connect as pg_dump writes it", () => {
  it.each([
    ["a bare name", "\\connect app"],
    ["pg_dump's conninfo form", `\\connect -reuse-previous=on "dbname='my ""odd"" db ü'"`],
    ["an escaped quote in the conninfo", `\\connect -reuse-previous=on "dbname='o\\'brien'"`],
    ["pg_dump 9.x's quoted name", '\\connect "My Shop"'],
    ["pg_dump's \\encoding before it", "\\encoding SQL_ASCII"],
  ])("accepts %s", (_what, line) => {
    expect(scan(line).forbidden).toBeUndefined();
  });

  it.each([
    ["a meta-command after the database", "\\connect db \\! touch /tmp/x", /further meta-command/],
    ["a shell after \\c", "\\c db \\! id", /further meta-command/],
    [
      "a conninfo with a host",
      `\\connect -reuse-previous=on "dbname='db' host=127.0.0.1 port=5432"`,
      /not a single dbname/,
    ],
    ["a quoted conninfo", '\\connect "host=127.0.0.1 port=5432 dbname=prod"', /connection string/],
    ["a service", '\\connect "service=prod"', /connection string/],
    ["a URI", '\\connect "postgresql://127.0.0.1/prod"', /connection string/],
    ["positional host and port", "\\connect prod postgres 127.0.0.1 5432", /further meta-command, a host/],
    ["a backtick shell", "\\connect `id`", /not the single database name/],
    ["a meta-command after \\restrict", "\\restrict k \\! id", /not a single restrict key/],
  ])("refuses %s", (_what, line, why) => {
    const f = scan(line).forbidden;
    expect(f?.problem).toMatch(why);
  });
});

describe("createGuardStream: bytes and restricted mode", () => {
  const through = async (input: Buffer, restrictKey?: string) => {
    const guard = createGuardStream({ file: "x.sql", ...(restrictKey ? { restrictKey } : {}) });
    Readable.from([...input].map((b) => Buffer.from([b]))).pipe(guard);
    const out: Buffer[] = [];
    for await (const c of guard) out.push(c as Buffer);
    return Buffer.concat(out);
  };

  it("passes a LATIN1 dump's bytes to psql unchanged", async () => {
    const latin1 = Buffer.from(
      "SET client_encoding = 'LATIN1';\nCOPY t (name, code) FROM stdin;\nJosé Müller\tcafé\n\\.\nSELECT 'Zoë';\n",
      "latin1",
    );
    expect((await through(latin1)).equals(latin1)).toBe(true);
  });

  it("keeps restricted mode on across a \\connect line: lifted for that one line only", async () => {
    const out = await through(
      Buffer.from("\\restrict k1\nSELECT 1;\n\\unrestrict k1\n\\connect app\n\\restrict k1\nSELECT 2;\n"),
      "ours",
    );
    expect(out.toString()).toBe(
      "\\restrict ours\n\nSELECT 1;\n\n\\unrestrict ours\n\\connect app\n\\restrict ours\n\nSELECT 2;\n",
    );
  });

  it("never forwards any part of a refused \\connect line", async () => {
    await expect(through(Buffer.from("SELECT 1;\n\\connect db \\! id\n"), "ours")).rejects.toThrow(
      /meta-command \\connect at line 2/,
    );
  });
});

describe("SqlScanner: where psql's lexer and the scanner could part", () => {
  it.each([
    ["a word ending in E before a quote", "SELECT somE'\\' ' \\! id';"],
    ["a number ending in E before a quote", "SELECT 1E'\\' ' \\! id';"],
    ["a $ right after a number (a dollar quote for psql 15)", "SELECT 1$$' $$ \\! id"],
    ["SET LOCAL of standard_conforming_strings", "SET LOCAL standard_conforming_strings = off;"],
    [
      "ALTER DATABASE … SET standard_conforming_strings",
      "ALTER DATABASE app SET standard_conforming_strings TO off;",
    ],
    [
      "set_config of standard_conforming_strings",
      "SELECT pg_catalog.set_config('standard_conforming_strings', 'off', false);",
    ],
  ])("refuses %s", (_what, sql) => {
    const s = scan(sql);
    expect(s.hazard ?? s.forbidden, sql).toBeDefined();
  });

  it("reads E'…' after a closed dollar quote or a comment as an escape string, as psql does", () => {
    // psql: $$x$$ then E'\' ' (one string), then the shell; a scanner that took E for part of a
    // word would open a string at the second quote and miss it
    expect(scan("SELECT $$x$$E'\\' ' \\! id").forbidden?.command).toBe("!");
    expect(scan("SELECT /* c */E'\\' ' \\! id").forbidden?.command).toBe("!");
  });
});
