/**
 * Dumps as DBAs make them (fixtures/build-realworld.sh, the machine's own pg_dump 15), drilled by
 * the real CLI in one audit: every compression of a plain dump, --inserts, large objects and a
 * large bytea, LATIN1 and SJIS text, odd database/schema/table/role names, a tablespace,
 * inheritance and declarative partitions, an unpopulated matview, a dump taken under
 * TZ=America/New_York — all pass with their bytes and row counts intact — and cut-off copies of
 * the plain and gzipped dump, which all fail.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DrillResult, Inventory, RunResult } from "../src/model.js";
import { attest, ROOT, workspace } from "./support/cli.js";
import { leftovers } from "./support/runtimes.js";

const OUT = join(ROOT, "fixtures", "generated", "realworld");

interface Expected {
  stamp: string;
  databases: Record<
    string,
    {
      tables: Record<string, number>;
      partitioned: Record<string, number>;
      matviews: Record<string, boolean>;
      large_objects: number;
    }
  >;
  values: Record<string, string>;
  ny_dump_epoch: [number, number];
}

let expected: Expected;
let dir = "";
let doc: RunResult;
let code: number | null = null;
let stderr = "";
const byId = new Map<string, DrillResult>();

/** The one drill of `source` whose backup id is `id`. */
function drill(source: string, id: string): DrillResult {
  const d = byId.get(`${source}/${id}`);
  if (!d) throw new Error(`no drill of ${source}/${id}; drilled: ${[...byId.keys()].join(", ")}`);
  return d;
}

/** A query check comparing one value read back from the restored copy. */
const query = (name: string, db: string, sql: string, value: string) =>
  `{ name: ${JSON.stringify(name)}, database: ${JSON.stringify(db)}, sql: ${JSON.stringify(sql)}, expect: ${JSON.stringify(`= ${value}`)} }`;

beforeAll(async () => {
  execFileSync("bash", [join(ROOT, "fixtures", "build-realworld.sh"), OUT], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  expected = JSON.parse(readFileSync(join(OUT, "expected.json"), "utf8")) as Expected;
  const v = expected.values;
  const people = query(
    "people bytes",
    "traits",
    "select encode(convert_to(string_agg(name || '/' || city, ',' order by id), 'UTF8'), 'hex') from public.people where id <= 4",
    v.traits_people_hex!,
  );
  const ws = workspace(
    // two drills at a time: most of a drill is provisioning and waiting on the sandbox's server
    (d) => `sandbox: { runtime: local, concurrency: 2 }
sources:
  - name: formats
    type: dump-dir
    path: ${OUT}/formats
    include: ["traits_*.sql", "traits_*.sql.*"]
    select: all
    checks: { queries: [${people}] }
  - name: inserts
    type: dump-dir
    path: ${OUT}/inserts
    checks: { queries: [${people}] }
  - name: bulk
    type: dump-dir
    path: ${OUT}/bulk
    include: ["*.sql.gz"]
    checks:
      queries:
        - ${query("blob md5", "bulk", "select md5(b) from public.blob", v.bulk_blob_md5!)}
        - ${query("large objects md5", "bulk", "select md5(string_agg(md5(lo_get(doc)), ',' order by id)) from public.docs", v.bulk_lo_md5!)}
        - ${query("large objects", "bulk", "select count(*) from pg_catalog.pg_largeobject_metadata", String(expected.databases.bulk!.large_objects))}
  - name: latin1
    type: dump-dir
    path: ${OUT}/latin1
    include: ["*.sql"]
    checks:
      queries:
        - ${query("latin1 bytes", "latin1", "select encode(convert_to(string_agg(name || '/' || code, ',' order by id), 'LATIN1'), 'hex') from public.people", v.latin1_people_hex!)}
  - name: sjis
    type: dump-dir
    path: ${OUT}/sjis
    checks:
      queries:
        - ${query("sjis bytes", "sjis", "select encode(convert_to(string_agg(\"ソ\" || '/' || note, ',' order by id), 'UTF8'), 'hex') from public.\"表\"", v.sjis_hex!)}
  - name: names
    type: dump-dir
    path: ${OUT}/names
    include: ["shop.prod_*.dump", "MyShop_*.dump", "*.sql"]
    select: all
  - name: tz
    type: dump-dir
    path: ${OUT}/tz
  - name: cutoff
    type: dump-dir
    path: ${OUT}/cutoff
    select: all
  - name: cluster
    type: dump-dir
    path: ${OUT}/cluster
  - name: pair
    type: dump-dir
    path: ${OUT}/pair
    select: all
    pairs:
      - { schema: "traits_schema_*.sql", data: "traits_data_*.sql" }
      - { schema: "traits_schema_*.dump", data: "traits_data_*.dump" }
    checks: { queries: [${people}] }
  - name: unpaired
    type: dump-dir
    path: ${OUT}/pair
    include: ["traits_data_*.dump", "traits_data_*.sql"]
    select: all
  - name: gzipped
    type: dump-dir
    path: ${gzipped(d)}
    select: all
    checks: { queries: [${people}] }
history: { csv: ${d}/reports/history.csv }
reports: { dir: ${d}/reports }
`,
  );
  dir = ws.dir;
  const r = await attest(["audit", "--config", ws.config, "--json", "--no-mail"]);
  code = r.code;
  stderr = r.stderr;
  try {
    doc = JSON.parse(r.stdout) as RunResult;
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${r.code}): ${r.stderr.slice(-1500)}`);
  }
  for (const d of doc.drills) byId.set(`${d.source}/${d.backup.id}`, d);
}, 900_000);

afterAll(() => {
  if (doc) expect(leftovers("local", doc.run.id), "sandboxes left behind").toEqual([]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The inventory of a drill's one restored database, from its evidence file. */
function inventoryOf(d: DrillResult): Inventory["databases"][number] {
  const ev = JSON.parse(readFileSync(join(dir, "reports", d.evidence!), "utf8")) as { inventory: Inventory };
  expect(ev.inventory.databases, d.backup.id).toHaveLength(1);
  return ev.inventory.databases[0]!;
}

/**
 * `pg_dump -Fc | gzip` output, whole, cut at two points, and with one byte of its deflate data
 * flipped: made in the test's folder from the builder's .dump.gz.
 */
function gzipped(dir: string): string {
  const gz = join(dir, "gzipped");
  mkdirSync(gz, { mode: 0o755 });
  chmodSync(dir, 0o755);
  const whole = readFileSync(join(OUT, "formats", "traits_20261201T0300.dump.gz"));
  writeFileSync(join(gz, "traits.dump.gz"), whole, { mode: 0o644 });
  writeFileSync(join(gz, "traits_cut30.dump.gz"), whole.subarray(0, Math.floor(whole.length * 0.3)));
  writeFileSync(join(gz, "traits_cut90.dump.gz"), whole.subarray(0, Math.floor(whole.length * 0.9)));
  const flipped = Buffer.from(whole);
  const at = Math.floor(flipped.length / 2);
  flipped[at] = flipped[at]! ^ 0xff;
  writeFileSync(join(gz, "traits_flipped.dump.gz"), flipped);
  for (const f of ["traits_cut30.dump.gz", "traits_cut90.dump.gz", "traits_flipped.dump.gz"])
    chmodSync(join(gz, f), 0o644);
  return gz;
}

describe("real-world dumps", () => {
  const STAMPED = (name: string) => name.replace("{S}", "20261201T0300");
  const PASSING: Array<[string, string]> = [
    ...["sql", "sql.gz", "sql.bz2", "sql.xz", "sql.zst", "sql.lz4"].map(
      (ext) => ["formats", STAMPED(`traits_{S}.${ext}`)] as [string, string],
    ),
    ["inserts", STAMPED("traits_{S}.sql")],
    ["bulk", STAMPED("bulk_{S}.sql.gz")],
    ["latin1", STAMPED("latin1_{S}.sql")],
    ["sjis", STAMPED("sjis_{S}.sql")],
    ["names", STAMPED("shop.prod_{S}.dump")],
    ["names", STAMPED("MyShop_{S}.dump")],
    ["names", STAMPED('my "odd" db ü_{S}.sql')],
    ["tz", "nydb.sql"],
    ["pair", STAMPED("traits_data_{S}.sql")],
    ["pair", STAMPED("traits_data_{S}.dump")],
    ["gzipped", "traits.dump.gz"],
  ];
  const GZIP_DAMAGED = ["traits_cut30.dump.gz", "traits_cut90.dump.gz", "traits_flipped.dump.gz"];
  const CUT = [
    "traits_cut10.sql",
    "traits_cut40.sql",
    "traits_cut70.sql",
    "traits_cut95.sql",
    "traits_cutfooter.sql",
    "traits_cut40.sql.gz",
    "traits_cutstream30.sql.gz",
    "traits_cutstream80.sql.gz",
  ];

  const CLUSTER = STAMPED("cluster_{S}.sql");

  it("drills exactly the dumps configured, and exits 1 (the cut-off ones fail)", () => {
    expect([...byId.keys()].sort()).toEqual(
      [
        ...PASSING.map(([s, id]) => `${s}/${id}`),
        ...CUT.map((id) => `cutoff/${id}`),
        `cluster/${CLUSTER}`,
        `unpaired/${STAMPED("traits_data_{S}.dump")}`,
        `unpaired/${STAMPED("traits_data_{S}.sql")}`,
        ...GZIP_DAMAGED.map((id) => `gzipped/${id}`),
      ].sort(),
    );
    expect(code, stderr.slice(-1500)).toBe(1);
  });

  it.each(PASSING)("%s %s passes every check, its non-ASCII values read back byte for byte", (source, id) => {
    const d = drill(source, id);
    expect(d.verdict, `${d.reason}\n${stderr.slice(-800)}`).toBe("pass");
    for (const name of ["server_up", "full_read", "inventory", "amcheck", "write"])
      expect(d.checks.find((c) => c.name === name)?.status, `${id} ${name}`).toBe("pass");
    const queries = d.checks.filter((c) => c.name.startsWith("query:"));
    for (const q of queries) expect(q.status, `${id} ${q.name}: ${q.detail}`).toBe("pass");
    const wanted = { formats: 1, inserts: 1, bulk: 3, latin1: 1, sjis: 1, pair: 1, gzipped: 1 }[source] ?? 0;
    expect(queries, id).toHaveLength(wanted);
  });

  it.each(GZIP_DAMAGED)(
    "a pg_dump -Fc | gzip stream cut off or damaged (%s) fails, naming gzip's complaint",
    (id) => {
      const d = drill("gzipped", id);
      expect(d.verdict, d.reason).toBe("fail");
      expect(d.reason).toMatch(
        /the gzip stream is cut off or damaged \(gzip: .*(unexpected end of file|invalid compressed data|crc error|length error)/,
      );
    },
  );

  it.each(PASSING)("%s %s has the source's row counts (count(*) FROM ONLY), matviews apart", (source, id) => {
    const d = drill(source, id);
    const db = inventoryOf(d);
    const want = expected.databases[db.name];
    expect(want, `restored database ${db.name} of ${id}`).toBeDefined();
    const rows = Object.fromEntries(
      db.tables.filter((t) => t.kind !== "partitioned").map((t) => [t.name, t.rows]),
    );
    expect(rows, id).toEqual(want!.tables);
    for (const t of db.tables.filter((x) => x.kind === "partitioned")) {
      // a partitioned parent has no rows of its own: listed with none, or with its partitions' sum
      expect(want!.partitioned[t.name], `${id} ${t.name}`).toBeDefined();
      expect([0, want!.partitioned[t.name]], `${id} ${t.name}`).toContain(t.rows);
    }
    expect(db.tables.filter((t) => t.kind === "partitioned").map((t) => t.name)).toEqual(
      Object.keys(want!.partitioned),
    );
    expect([...(db.matviews ?? [])].sort(), id).toEqual(Object.keys(want!.matviews).sort());
  });

  it("restores the traits: an inheritance parent counted once, the unpopulated matview skipped, the tablespace made inside the sandbox, the quoted role created", () => {
    const d = drill("formats", STAMPED("traits_{S}.sql"));
    const db = inventoryOf(d);
    expect(db.tables.find((t) => t.name === "public.measurement")).toEqual({
      name: "public.measurement",
      rows: expected.databases.traits!.tables["public.measurement"],
      kind: "parent",
    });
    expect(d.checks.find((c) => c.name === "full_read")?.detail).toMatch(
      /; 1 materialized view\(s\) not populated \(WITH NO DATA\), skipped$/,
    );
    const notes = d.notes.join("\n");
    expect(notes).toMatch(/created tablespace\(s\) fastdisk inside the sandbox/);
    expect(notes).toMatch(/created 1 role\(s\) the dump references: Ops "Team" Ω/);
  });

  it('restores databases named shop.prod, MyShop and my "odd" db ü under their own names, amcheck included', () => {
    const names = PASSING.filter(([s]) => s === "names").map(([s, id]) => inventoryOf(drill(s, id)).name);
    expect(names).toEqual(["shop.prod", "MyShop", 'my "odd" db ü']);
    for (const [s, id] of PASSING.filter(([x]) => x === "names")) {
      const amcheck = drill(s, id).checks.find((c) => c.name === "amcheck");
      expect(amcheck?.status, `${id}: ${amcheck?.detail}`).toBe("pass");
    }
  });

  it("dates a pg_dump -v taken under TZ=America/New_York by its own zone, and stamped files by their name", () => {
    const [before, after] = expected.ny_dump_epoch;
    const at = Date.parse(drill("tz", "nydb.sql").backup.createdAt) / 1000;
    expect(at).toBeGreaterThanOrEqual(before - 1);
    expect(at).toBeLessThanOrEqual(after + 1);
    expect(drill("formats", STAMPED("traits_{S}.sql.gz")).backup.createdAt).toBe("2026-12-01T03:00:00.000Z");
  });

  it("restores the full pg_dumpall file as the whole cluster: every database with the source's row counts", () => {
    const d = drill("cluster", CLUSTER);
    expect(d.verdict, `${d.reason}\n${stderr.slice(-800)}`).toBe("pass");
    for (const name of ["server_up", "full_read", "inventory", "amcheck", "write"])
      expect(d.checks.find((c) => c.name === name)?.status, name).toBe("pass");
    const ev = JSON.parse(readFileSync(join(dir, "reports", d.evidence!), "utf8")) as {
      inventory: Inventory;
    };
    const dbs = new Map(ev.inventory.databases.map((x) => [x.name, x]));
    // bulk and latin1 are left out of the file (fixtures/build-realworld.sh says why)
    const dumped = Object.keys(expected.databases).filter((n) => n !== "bulk" && n !== "latin1");
    expect([...dbs.keys()].filter((n) => n !== "postgres").sort()).toEqual(dumped.sort());
    for (const name of dumped) {
      const rows = Object.fromEntries(
        dbs
          .get(name)!
          .tables.filter((t) => t.kind !== "partitioned")
          .map((t) => [t.name, t.rows]),
      );
      expect(rows, name).toEqual(expected.databases[name]!.tables);
    }
  });

  it.each(["sql", "dump"])(
    "restores a schema-only and a data-only .%s configured as a pair as one backup; alone, the data is error",
    (ext) => {
      const d = drill("pair", STAMPED(`traits_data_{S}.${ext}`));
      expect(d.notes.join("\n")).toContain(
        `restored as one backup: the schema-only dump ${STAMPED(`traits_schema_{S}.${ext}`)}, then the data-only dump ${STAMPED(`traits_data_{S}.${ext}`)}`,
      );
      const alone = drill("unpaired", STAMPED(`traits_data_{S}.${ext}`));
      expect(alone.verdict).toBe("error");
      expect(alone.reason).toMatch(/data-only dump: needs its schema dump/);
    },
  );

  it.each(CUT)("fails the cut-off copy %s, naming the missing footer", (id) => {
    const d = drill("cutoff", id);
    expect(d.verdict, d.reason).toBe("fail");
    expect(d.reason).toMatch(
      /^dump is cut off: no completion footer \((cut inside the data of the COPY|last statement) at line \d+: "/,
    );
    if (id.startsWith("traits_cutstream")) expect(d.reason).toMatch(/; the gzip stream ends early/);
  });
});
