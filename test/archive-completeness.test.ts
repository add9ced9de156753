/**
 * Archives checked against their TOC (fixtures/build-archive-cuts.sh): real pg_dump archives of
 * a small database, cut at several points, with a data file cut, emptied or deleted, and with a
 * flipped byte in compressed table data. Every one drills to `fail`, never `pass`; the whole
 * archives pass with every TOC data entry reported restored.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  archiveContent,
  archiveDataProblem,
  dataEntries,
  firstProblem,
  RestoredData,
} from "../src/restore/logical/archive-completeness.js";
import { readToc, type TocEntry } from "../src/restore/logical/archive-toc.js";
import { ROOT } from "./support/cli.js";
import { drillSuite, selectedRuntimes } from "./support/runtimes.js";

const CUTS = join(ROOT, "fixtures", "generated", "archive-cuts");
const PG_RESTORE = "/usr/lib/postgresql/15/bin/pg_restore";

beforeAll(() => {
  execFileSync("bash", [join(ROOT, "fixtures", "build-archive-cuts.sh"), CUTS], {
    stdio: ["ignore", "ignore", "inherit"],
  });
});

const formatOf = (name: string) =>
  name.endsWith(".dir") ? "directory" : name.endsWith(".tar") ? "tar" : "custom";

/** What `pg_restore --verbose` says while writing an archive (or the entries of `list`) as SQL. */
function verboseLines(archive: string, list?: string): string[] {
  const r = spawnSync(PG_RESTORE, ["--verbose", "-f", "/dev/null", ...(list ? ["-L", list] : []), archive], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`pg_restore failed on ${archive}: ${r.stderr.slice(-500)}`);
  return r.stderr.split("\n").filter(Boolean);
}

describe("archive TOC completeness", () => {
  it("finds every data entry's data in the whole archives, and tells full, schema-only and data-only apart", () => {
    for (const name of readdirSync(join(CUTS, "good"))) {
      const path = join(CUTS, "good", name);
      expect(archiveDataProblem(path, formatOf(name), name), name).toBeUndefined();
      expect(archiveContent(path, formatOf(name)), name).toBe("full");
    }
    expect(archiveContent(join(CUTS, "pairs", "shop-schema_20261120T0300.dump"), "custom")).toBe(
      "schema-only",
    );
    expect(archiveContent(join(CUTS, "pairs", "shop-data_20261120T0300.dump"), "custom")).toBe("data-only");
  });

  it("names the table whose data a cut or deleted file took, before pg_restore runs", () => {
    const problem = (name: string) =>
      archiveDataProblem(join(CUTS, "cut", name), formatOf(name), name)?.message;
    expect(problem("z0_cut_line.dir")).toMatch(
      /^z0_cut_line\.dir: archive cut off or damaged: the data file \d+\.dat of table public\.reviews \(TOC entry \d+\) ends without pg_dump's end-of-data line/,
    );
    expect(problem("z0_cut_text.dir")).toMatch(
      /table public\.reviews .*ends without pg_dump's end-of-data line/,
    );
    expect(problem("z0_deleted.dir")).toMatch(
      /the data file \d+\.dat of table public\.reviews .* is missing/,
    );
    expect(problem("dir_deleted.dir")).toMatch(
      /the data file \d+\.dat of table public\.reviews .* is missing/,
    );
    expect(problem("dir_emptied.dir")).toMatch(/table public\.reviews .* is cut short/);
    expect(problem("custom_cut300.dump")).toMatch(
      /the file ends inside the data of table public\.\w+ \(TOC entry \d+\); \d+ data entr(y lies|ies lie) wholly past its end/,
    );
    expect(problem("tar_cut990.tar")).toMatch(
      /the tar archive ends without its end-of-archive blocks|ends inside the member/,
    );
    expect(problem("tar_cut600.tar")).toMatch(/ends inside the member \d+\.dat of table public\.reviews/);
  });

  it("compares pg_restore's verbose report with the TOC: an entry it did not process is named", () => {
    const archive = join(CUTS, "good", "shop_20261120T0300.dump");
    const toc = readToc(archive, "custom");
    const all = new RestoredData();
    for (const l of verboseLines(archive)) all.line(l);
    expect(all.missing(toc)).toEqual([]);
    expect(
      dataEntries(toc)
        .map((e) => e.desc)
        .sort(),
    ).toEqual(["BLOBS", "TABLE DATA", "TABLE DATA", "TABLE DATA"]);

    // a restore that skipped the reviews data (a list without its entry) is caught
    const list = execFileSync(PG_RESTORE, ["--list", archive], { encoding: "utf8" })
      .split("\n")
      .map((l) => (/ TABLE DATA public reviews /.test(l) ? `;${l}` : l))
      .join("\n");
    const listFile = join(tmpdir(), `attest-list-${process.pid}.txt`);
    writeFileSync(listFile, list);
    const partial = new RestoredData();
    try {
      for (const l of verboseLines(archive, listFile)) partial.line(l);
    } finally {
      rmSync(listFile, { force: true });
    }
    expect(partial.missing(toc).map((e) => `${e.namespace}.${e.tag}`)).toEqual(["public.reviews"]);
  });

  it("reads the report of parallel workers whose prefixes landed on each other's lines (pg_restore -j)", () => {
    // as pg_restore -j2 wrote it: prefix and message are separate writes of two processes
    const seen = new RestoredData();
    for (const l of [
      'pg_restore:pg_restore: processing data for table "public.events 2025"',
      ' processing data for table "public.hot"',
      "pg_restore: processing BLOBS",
    ])
      seen.line(l);
    const entry = (dumpId: number, desc: string, tag: string) =>
      ({ dumpId, desc, tag, namespace: "public" }) as TocEntry;
    const toc = [
      entry(1, "TABLE DATA", "events 2025"),
      entry(2, "TABLE DATA", "hot"),
      entry(3, "BLOBS", "BLOBS"),
    ];
    expect(seen.missing(toc)).toEqual([]);
    expect(seen.missing([...toc, entry(4, "TABLE DATA", "cold")]).map((e) => e.tag)).toEqual(["cold"]);
  });

  it("keeps a worker's error whose prefix and level landed on another worker's line (pg_restore -j)", () => {
    // as pg_restore -j4 wrote it on a flipped byte (CI once lost the cause this way): the
    // worker's "error: " sits on a progress line and its message stands alone
    const seen = new RestoredData();
    for (const l of [
      "pg_restore: launching item 3631 TABLE DATA events_2026_09",
      'pg_restore:pg_restore:  error: processing data for table "audit.events_2026_09"',
      "could not uncompress data: incorrect data check",
      "finished item 3418 INDEX orders_created_brin",
      " launching item 3465 TRIGGER orders orders_audit",
      ...Array.from({ length: 40 }, (_, i) => `pg_restore: some progress this list does not know ${i}`),
      'pg_restore: creating TRIGGER "sales.orders orders_audit"',
      "pg_restore: error: a worker process died unexpectedly",
    ])
      seen.line(l);
    expect(seen.problemTail.split("\n")).toEqual([
      "could not uncompress data: incorrect data check",
      "pg_restore: error: a worker process died unexpectedly",
    ]);
    expect(firstProblem(seen.problemTail)).toBe("could not uncompress data: incorrect data check");
    expect(
      seen.missing([
        { dumpId: 1, desc: "TABLE DATA", tag: "events_2026_09", namespace: "audit" } as TocEntry,
      ]),
    ).toEqual([]);
  });

  it("keeps a worker's error whose message landed after yet another worker's prefix (pg_restore -j)", () => {
    // pg_restore -j8 on a flipped byte once wrote two whole messages of the leader between a
    // worker's "error: " and its message; had the message come a write earlier, right after
    // the leader's "pg_restore:" (or its " "), it would sit on a line with a prefix and no level
    for (const glued of ["pg_restore:", "pg_restore: "]) {
      const seen = new RestoredData();
      for (const l of [
        'pg_restore: creating CONSTRAINT "sales.order_items order_items_pkey"',
        "pg_restore: error: pg_restore: finished item 3415 INDEX customers_region",
        `${glued}could not uncompress data: incorrect data check`,
        `${glued === "pg_restore:" ? " " : ""}launching item 3617 TABLE DATA stock`,
        ...Array.from({ length: 40 }, (_, i) => `pg_restore: some progress this list does not know ${i}`),
        "pg_restore: error: a worker process died unexpectedly",
      ])
        seen.line(l);
      expect(seen.problemTail.split("\n")).toEqual([
        `${glued}could not uncompress data: incorrect data check`,
        "pg_restore: error: a worker process died unexpectedly",
      ]);
      expect(firstProblem(seen.problemTail)).toBe(`${glued}could not uncompress data: incorrect data check`);
    }
  });

  it("keeps the first problems and the last when there are many, and where the error happened", () => {
    const seen = new RestoredData();
    for (const l of [
      "pg_restore: while PROCESSING TOC:",
      "pg_restore: from TOC entry 3418; 1259 16612 INDEX orders_created_brin app",
      "pg_restore: error: could not execute query: ERROR:  function public.f() does not exist",
      ...Array.from({ length: 30 }, (_, i) => `Command was: line ${i} of a long statement`),
      "pg_restore:  warning: errors ignored on restore: 1",
    ])
      seen.line(l);
    const kept = seen.problemTail.split("\n");
    expect(kept.slice(0, 4)).toEqual([
      "pg_restore: while PROCESSING TOC:",
      "pg_restore: from TOC entry 3418; 1259 16612 INDEX orders_created_brin app",
      "pg_restore: error: could not execute query: ERROR:  function public.f() does not exist",
      "Command was: line 0 of a long statement",
    ]);
    expect(kept[4]).toBe("…");
    expect(kept.at(-1)).toBe("pg_restore:  warning: errors ignored on restore: 1");
    expect(kept).toHaveLength(13);
    expect(firstProblem(seen.problemTail)).toMatch(/^pg_restore: error: could not execute query/);
  });
});

describe.each(selectedRuntimes())("archive cuts drilled in the %s runtime", (runtime) => {
  const { config, run } = drillSuite(runtime);

  it("fails every cut or damaged archive, at every cut point, and never passes one", async () => {
    const ws = config(`
sources:
  - name: cut
    type: dump-dir
    path: ${CUTS}/cut
    select: all`);
    const { code, doc } = await run(["audit", "--config", ws.config]);
    const expectedIds = readdirSync(join(CUTS, "cut")).sort();
    expect(doc.drills.map((d) => d.backup.id).sort()).toEqual(expectedIds);
    for (const d of doc.drills) expect(d.verdict, `${d.backup.id}: ${d.reason}`).toBe("fail");
    const reason = (id: string) => doc.drills.find((d) => d.backup.id === id)!.reason ?? "";
    expect(reason("z0_cut_line.dir")).toMatch(
      /table public\.reviews .*ends without pg_dump's end-of-data line/,
    );
    expect(reason("custom_flipped.dump")).toMatch(/pg_restore failed: .*could not uncompress data/);
    expect(reason("dir_flipped.dir")).toMatch(/pg_restore failed: .*(could not read from input file|data)/);
    expect(code).toBe(1);
  });

  it("passes the whole archives, every format, saying every data entry of the TOC was restored", async () => {
    const expected = JSON.parse(readFileSync(join(CUTS, "expected.json"), "utf8")) as {
      tables: Record<string, number>;
    };
    const ws = config(`
sources:
  - name: good
    type: dump-dir
    path: ${CUTS}/good
    select: all
    checks:
      queries:
        - { name: reviews, database: shop, sql: "select count(*) from public.reviews", expect: "= ${expected.tables["public.reviews"]}" }`);
    const { code, doc, stderr } = await run(["audit", "--config", ws.config]);
    expect(doc.drills).toHaveLength(5);
    for (const d of doc.drills) {
      expect(d.verdict, `${d.backup.id}: ${d.reason} ${stderr.slice(-500)}`).toBe("pass");
      expect(d.notes.join(" "), d.backup.id).toMatch(/all 4 data entries of the TOC restored/);
    }
    expect(code).toBe(0);
  });
});
