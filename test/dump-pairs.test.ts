/**
 * Schema/data pairs (fixtures/build-archive-cuts.sh: pairs/, orphan/): a `--schema-only` and a
 * `--data-only` archive configured as a pair are listed and drilled as one backup that passes with
 * every row; an unpaired data-only dump is listed as data-only and drilled as `error` saying it
 * needs its schema.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type Backup, detailOf } from "../src/model.js";
import { pairDumps } from "../src/sources/dump-dir/dump-pairs.js";
import { attest, ROOT } from "./support/cli.js";
import { drillSuite, selectedRuntimes } from "./support/runtimes.js";

const CUTS = join(ROOT, "fixtures", "generated", "archive-cuts");

beforeAll(() => {
  execFileSync("bash", [join(ROOT, "fixtures", "build-archive-cuts.sh"), CUTS], {
    stdio: ["ignore", "ignore", "inherit"],
  });
});

const backup = (id: string, createdAt: string): Backup => ({
  source: "s",
  id,
  series: "shop",
  family: "logical",
  format: "custom",
  createdAt,
  createdAtOrigin: "header",
  sizeBytes: 10,
  location: `/d/${id}`,
  labels: {},
});

describe("pairing", () => {
  it("pairs each data dump with the schema dump nearest in time, within the window, and lists the pair once", () => {
    const listed = pairDumps(
      [
        backup("app-schema_1.dump", "2026-11-19T03:00:00Z"),
        backup("app-data_1.dump", "2026-11-19T03:01:00Z"),
        backup("app-schema_2.dump", "2026-11-20T03:00:00Z"),
        backup("app-data_2.dump", "2026-11-20T03:02:00Z"),
        backup("app-data_3.dump", "2026-11-22T03:00:00Z"),
        backup("2026-11-23-daily/app-schema.dump", "2026-11-23T03:00:00Z"),
        backup("2026-11-23-daily/app-data.dump", "2026-11-23T03:00:30Z"),
      ],
      [{ schema: "app-schema*.dump", data: "app-data*.dump", within: 3_600_000 }],
    );
    expect(listed.map((b) => [b.id, detailOf(b, "dump")?.schema?.id ?? null, b.sizeBytes])).toEqual([
      ["app-data_1.dump", "app-schema_1.dump", 20],
      ["app-data_2.dump", "app-schema_2.dump", 20],
      ["app-data_3.dump", null, 10],
      ["2026-11-23-daily/app-data.dump", "2026-11-23-daily/app-schema.dump", 20],
    ]);
  });
});

describe.each(selectedRuntimes())("schema/data pairs in the %s runtime", (runtime) => {
  const { config, run } = drillSuite(runtime);
  const expected = () =>
    (JSON.parse(readFileSync(join(CUTS, "expected.json"), "utf8")) as { tables: Record<string, number> })
      .tables;

  it("drills a configured pair of archives as one backup: schema, data, then indexes and keys; every row there", async () => {
    const t = expected();
    const ws = config(`
sources:
  - name: pairs
    type: dump-dir
    path: ${CUTS}/pairs
    include: ["*.dump"]
    pairs:
      - { schema: "shop-schema_*.dump", data: "shop-data_*.dump" }
    select: all
    checks:
      queries:
        - { name: reviews, database: shop, sql: "select count(*) from public.reviews", expect: "= ${t["public.reviews"]}" }
        - { name: orders, database: shop, sql: "select count(*) from public.orders", expect: "= ${t["public.orders"]}" }
        - { name: keys, database: shop, sql: "select count(*) from pg_catalog.pg_constraint where contype = 'f' and connamespace = 'public'::regnamespace", expect: "= 2" }`);
    const { code, doc, stderr } = await run(["audit", "--config", ws.config]);
    expect(doc.drills.map((d) => d.backup.id)).toEqual(["shop-data_20261120T0300.dump"]);
    const d = doc.drills[0]!;
    expect(d.verdict, `${d.reason} ${stderr.slice(-800)}`).toBe("pass");
    expect(d.notes.join(" ")).toMatch(
      /restored as one backup: the schema-only dump shop-schema_20261120T0300\.dump, then the data-only dump shop-data_20261120T0300\.dump/,
    );
    expect(d.notes.join(" ")).toMatch(/all 4 data entries of the TOC restored \(a data-only dump\)/);
    expect(d.checks.filter((c) => c.name.startsWith("query:")).map((c) => c.status)).toEqual([
      "pass",
      "pass",
      "pass",
    ]);
    expect(code).toBe(0);
  });

  it("drills a configured pair of plain SQL dumps as one backup, schema then data through psql", async () => {
    const ws = config(`
sources:
  - name: plainpairs
    type: dump-dir
    path: ${CUTS}/pairs
    include: ["*.sql"]
    pairs:
      - { schema: "shop-schema_*.sql", data: "shop-data_*.sql", within: 1h }
    select: all`);
    const { code, doc, stderr } = await run(["audit", "--config", ws.config]);
    expect(doc.drills.map((d) => d.backup.id)).toEqual(["shop-data_20261120T0300.sql"]);
    const d = doc.drills[0]!;
    expect(d.verdict, `${d.reason} ${stderr.slice(-800)}`).toBe("pass");
    expect(d.notes.join(" ")).toMatch(
      /restored as one backup: the schema-only dump shop-schema_20261120T0300\.sql/,
    );
    const ev = JSON.parse(readFileSync(join(ws.dir, "reports", d.evidence!), "utf8")) as {
      inventory: { databases: Array<{ tables: Array<{ name: string; rows: number }> }> };
    };
    const rows = Object.fromEntries(ev.inventory.databases[0]!.tables.map((t) => [t.name, t.rows]));
    expect(rows).toEqual(expected());
    expect(code).toBe(0);
  });

  it("lists an unpaired data-only dump as data-only and drills it as error: it needs its schema", async () => {
    const ws = config(`
sources:
  - name: orphan
    type: dump-dir
    path: ${CUTS}/orphan
    select: all`);
    const listed = await attest(["list", "--config", ws.config, "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/"content":\s*"data-only"/);
    const { code, doc } = await run(["drill", "--config", ws.config, "--source", "orphan"]);
    expect(doc.drills).toHaveLength(1);
    expect(doc.drills[0]!.verdict).toBe("error");
    expect(doc.drills[0]!.reason).toMatch(
      /shop-data_20261120T0300\.dump: data-only dump: needs its schema dump \(configure `pairs: \[\{ schema: "<glob>", data: "<glob>" \}\]` on source orphan\)$/,
    );
    expect(code).toBe(3);
  });
});
