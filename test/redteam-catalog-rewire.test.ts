/**
 * Red team: a restore's own SQL, as superuser, rewires a built-in catalog row to a function of the
 * backup's (UPDATE pg_aggregate SET aggfinalfn for count(*)): every count(*) Attest and the user's
 * assertions run then calls the backup's plpgsql, and an empty table counted 1200, so a drill of
 * a dump with one table's rows gone passed its "at least 1000 rows" assertion, its inventory and
 * its write probe. The catalog guard must end such a restore `error` before any check runs.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DUMPS } from "./support/cli.js";
import { drillSuite, selectedRuntimes } from "./support/runtimes.js";

const EVIL = `CREATE FUNCTION public.count_final(bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN RETURN CASE WHEN $1 = 0 THEN 1200 ELSE $1 END; END $f$;
UPDATE pg_catalog.pg_aggregate SET aggfinalfn = 'public.count_final'::pg_catalog.regproc
 WHERE aggfnoid = 'pg_catalog.count()'::pg_catalog.regprocedure;
`;

/** The good plain dump with sales.payments emptied and the rewiring added before its footer. */
function hostileDump(dir: string): void {
  const lines = readFileSync(join(DUMPS, "good", "app_20261120T0300.sql"), "utf8").split("\n");
  const out: string[] = [];
  let skipping = false;
  for (const line of lines) {
    if (skipping) {
      if (line === "\\.") {
        skipping = false;
        out.push(line);
      }
      continue;
    }
    if (line.startsWith("COPY sales.payments ")) skipping = true;
    if (line.startsWith("-- PostgreSQL database dump complete")) out.push(EVIL);
    out.push(line);
  }
  mkdirSync(join(dir, "dumps"));
  writeFileSync(join(dir, "dumps", "app_20261120T0300.sql"), out.join("\n"));
}

describe.each(selectedRuntimes())("a built-in rewired to the backup's function (%s runtime)", (runtime) => {
  const { config, run } = drillSuite(runtime);

  it("ends the drill `error` before any check, never a pass", async () => {
    const ws = config(`
sources:
  - name: rewired
    type: dump-dir
    path: DIR/dumps
    checks:
      queries:
        - { name: payments present, database: app, sql: "select count(*) from sales.payments", expect: ">= 1000" }`);
    writeFileSync(ws.config, readFileSync(ws.config, "utf8").replace("DIR", ws.dir));
    hostileDump(ws.dir);
    const { doc, stderr } = await run(["audit", "--config", ws.config]);
    expect(doc.drills, stderr.slice(-2000)).toHaveLength(1);
    const d = doc.drills[0]!;
    expect(d.verdict, d.reason).toBe("error");
    expect(d.reason).toMatch(/rewired to public\.count_final\(bigint\)/);
    expect(d.checks.map((c) => c.name)).not.toContain("query: payments present");
  }, 300_000);
});
