/**
 * A backup whose catalog shadows built-ins Attest's own queries use (issue 10 item 7, red team
 * S3-1/S3-2): an overload pg_catalog.pg_read_file(text, integer, integer, boolean), an operator
 * pg_catalog.!~ (name, name), casts (pg_lsn AS text) and (bigint AS text), each raising
 * ATTEST-HIJACK-RAN when called (fixtures/build-catalog-hijack.sh). Drilled by the real CLI in
 * the local runtime: the drill ends `error` naming the objects, and none of them ever ran from
 * one of Attest's queries (the marker appears nowhere in what the run printed or stored).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
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
