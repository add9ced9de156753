/**
 * The pieces behind dump series and pg_dumpall restores, on real files: series names settled
 * after listing, the header facts they rest on, and what of a roles section is forgiven.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type Backup, detailOf } from "../src/model.js";
import { forgivenErrors, PsqlErrorJudge, sectionForPsql } from "../src/restore/logical/cluster-globals.js";
import { parsePlainHeader } from "../src/sources/dump-dir/plain-header.js";
import { settleSeriesNames } from "../src/sources/dump-dir/series-names.js";
import { ProcessError } from "../src/util/process.js";
import { ROOT } from "./support/cli.js";

const OUT = join(ROOT, "fixtures", "generated", "dumpall");
const SAMPLE = join(ROOT, "fixtures", "samples", "pg84-library.sql");
const HAVE = {
  roles: ["postgres", "pg_monitor"],
  tablespaces: ["pg_default"],
  databases: ["postgres"],
  currentUser: "postgres",
};

beforeAll(() => {
  execFileSync("bash", [join(ROOT, "fixtures", "build-dumpall.sh"), OUT], {
    stdio: ["ignore", "ignore", "inherit"],
  });
}, 120_000);

/** A listed dump as the dump-dir source makes it. */
function backup(id: string, series: string, seriesFrom?: string): Backup {
  return {
    source: "s",
    id,
    series,
    family: "logical",
    format: id.endsWith(".sql") ? "plain" : "custom",
    createdAt: "2026-11-20T03:00:00.000Z",
    createdAtOrigin: "name",
    sizeBytes: 1,
    location: `/x/${id}`,
    detail: { kind: "dump", scope: "database", ...(seriesFrom ? { seriesFrom } : {}) },
    labels: {},
  };
}

describe("series names of a dump directory", () => {
  it("gives a plain dump without -C the database of the one dump of its stem that names it", () => {
    const list = [
      backup("shop_20261120.dump", "shop.prod"),
      backup("shop_20261120.sql", "shop", "file name"),
      backup("other.sql", "other", "file name"),
    ];
    settleSeriesNames(list);
    expect(list.map((b) => [b.series, detailOf(b, "dump")?.seriesFrom])).toEqual([
      ["shop.prod", undefined],
      ["shop.prod", "dump of the same name: shop_20261120.dump"],
      ["other", "file name"],
    ]);
  });

  it("keeps the file name when two dumps of the stem name different databases", () => {
    const list = [
      backup("a/shop.dump", "shop_eu"),
      backup("b/shop.dump", "shop_us"),
      backup("shop.sql", "shop", "file name"),
    ];
    settleSeriesNames(list);
    expect(list[2]!.series).toBe("shop");
  });

  it("never merges a pg_dumpall file's series with a database's", () => {
    const list = [backup("app.dump", "app"), backup("app_full.sql", "app", "cluster file name")];
    settleSeriesNames(list);
    expect(list.map((b) => b.series)).toEqual(["app", "app (cluster)"]);
  });
});

describe("plain headers behind the series", () => {
  it("reads no database name from a pg_dumpall file (its first \\connect is template1's)", () => {
    const h = parsePlainHeader(
      readFileSync(join(OUT, "cluster", "prod-cluster_20261120T0300.sql")).subarray(0, 16384),
    );
    expect(h).toMatchObject({ kind: "cluster", databases: true });
    expect(h?.dbname).toBeUndefined();
  });

  it("sees pg_dump 8.x's CREATE PROCEDURAL LANGUAGE plpgsql, and a modern dump without it", () => {
    expect(parsePlainHeader(readFileSync(SAMPLE))?.createsPlpgsql).toBe(true);
    const modern = readFileSync(join(OUT, "series", "weird_20261120T0300.sql"));
    expect(parsePlainHeader(modern)?.createsPlpgsql).toBeUndefined();
  });
});

describe("the roles section of a pg_dumpall file", () => {
  const clean = readFileSync(join(OUT, "cluster", "prod-clean_20261120T0300.sql"));
  const split = clean.indexOf("\n\\connect ") + 1;
  const section = clean.subarray(0, split);

  it("drops pg_dumpall's own \\restrict lines, and the DROP TABLESPACE of kept tablespaces, keeping line numbers", () => {
    const { input, kept } = sectionForPsql(section, "f.sql", "k3y", new Set(["cold"]));
    const text = input.toString("utf8");
    expect(kept).toEqual(["cold"]);
    expect(text.startsWith("\\restrict k3y\n")).toBe(true);
    expect(text).not.toMatch(/^\\(?:un)?restrict (?!k3y)/m);
    expect(text).not.toContain("DROP TABLESPACE cold;");
    expect(text).toContain('DROP TABLESPACE "fast disk";');
    // one line added (the restrict key), none lost
    expect(text.split("\n").length).toBe(section.toString("utf8").split("\n").length + 1);
  });

  it("lets through only the \\connect postgres pg_dumpall up to 9.x writes before anything, leaving it out", () => {
    const old = Buffer.from(
      "--\n-- PostgreSQL database cluster dump\n--\n\n\\connect postgres\n\nCREATE ROLE a;\n",
    );
    const { input } = sectionForPsql(old, "f", undefined);
    expect(input.toString()).toBe("--\n-- PostgreSQL database cluster dump\n--\n\n\n\nCREATE ROLE a;\n");
    const other = Buffer.from("--\n\\connect shop\nCREATE ROLE a;\n");
    expect(() => sectionForPsql(other, "f", undefined)).toThrow(/meta-command \\connect/);
    const late = Buffer.from("CREATE ROLE a;\n\\connect postgres\n");
    expect(() => sectionForPsql(late, "f", undefined)).toThrow(/meta-command \\connect/);
  });

  it("refuses a section with a COPY or a meta-command pg_dumpall never writes there", () => {
    expect(() =>
      sectionForPsql(
        Buffer.from("--\n-- PostgreSQL database cluster dump\n--\nCOPY t FROM stdin;\n"),
        "f",
        undefined,
      ),
    ).toThrow(/holds a COPY at line 4/);
    expect(() =>
      sectionForPsql(Buffer.from("CREATE ROLE a;\n-- x\n  copy t to stdout;\n"), "f", undefined),
    ).toThrow(/holds a COPY at line 3/);
    expect(() => sectionForPsql(Buffer.from("CREATE ROLE a;\n\\! id\n"), "f", undefined)).toThrow(/\\!/);
  });

  it("lets through the word COPY where it is no statement: a comment, a role's COMMENT, a name", () => {
    const section = Buffer.from(
      "-- COPY of the roles\nCREATE ROLE copy_reader;\nCOMMENT ON ROLE copy_reader IS 'reads the COPY of prod';\n",
    );
    expect(sectionForPsql(section, "f", undefined).input.toString()).toBe(section.toString());
  });

  it("forgives a --clean error only at its own DROP line, and nothing else", () => {
    const input =
      "\\restrict k\nDROP ROLE app;\nALTER ROLE app WITH LOGIN;\nCREATE ROLE postgres;\nDROP ROLE postgres;\n";
    const judge = new PsqlErrorJudge(forgivenErrors(HAVE, input), input);
    judge.line('psql:<stdin>:2: ERROR:  role "app" does not exist');
    judge.line('psql:<stdin>:4: ERROR:  role "postgres" already exists');
    judge.line("psql:<stdin>:5: ERROR:  current user cannot be dropped");
    expect(() => judge.check()).not.toThrow();
    expect(judge.notes()).toHaveLength(1);
    judge.line('psql:<stdin>:3: ERROR:  role "app" does not exist');
    expect(() => judge.check()).toThrow(ProcessError);
  });

  it("does not forgive 'already exists' of a role the sandbox did not have", () => {
    const input = "CREATE ROLE app;\n";
    const judge = new PsqlErrorJudge(forgivenErrors(HAVE, input), input);
    judge.line('psql:<stdin>:1: ERROR:  role "app" already exists');
    expect(() => judge.check()).toThrow(/role "app" already exists/);
  });
});
