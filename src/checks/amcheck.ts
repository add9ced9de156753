/** pg_amcheck: heap and B-tree verification with --heapallindexed over every restored database. */
import { randomBytes } from "node:crypto";
import { quoteIdent, withClient } from "../runtimes/sql.js";
import { describeError } from "../util/errors.js";
import { lastLines } from "../util/process.js";
import type { Check, CheckContext } from "./check.js";
import { restoredDatabases, result } from "./helpers.js";

/** pg_amcheck over all restored databases. */
export const amcheckCheck: Check = {
  name: "amcheck",
  enabled: (ctx) => ctx.config.amcheck,
  async run(ctx) {
    const dbs = restoredDatabases(ctx);
    if (dbs.length === 0) return result("amcheck", "skip", "no database was restored");
    // the backup may carry an amcheck of its own whose functions it replaced (a no-op
    // verify_heapam turns corruption into a pass): every database gets a fresh one from $libdir
    const replaced: string[] = [];
    for (const db of dbs) {
      try {
        if (await freshAmcheck(ctx, db)) replaced.push(db);
      } catch (err) {
        return result(
          "amcheck",
          "error",
          `could not install a fresh amcheck in ${db}: ${describeError(err)}`,
        );
      }
    }
    const args = ["--heapallindexed", "--no-password", "--jobs", "2"];
    // -d takes a pattern: quoted, a name is itself (dots, capitals, quotes and spaces included)
    for (const db of dbs) args.push("-d", exactPattern(db));
    const corruption: string[] = [];
    const r = await ctx.sandbox.exec("pg_amcheck", args, {
      timeoutMs: ctx.timeoutMs,
      signal: ctx.signal,
      allowFailure: true,
      onStdoutLine: (l) => {
        if (l.trim() && corruption.length < 50) corruption.push(l.trim());
      },
    });
    // pg_amcheck: 0 = nothing found, 2 = corruption found, other = it could not check
    const note = replaced.length
      ? ` (the backup's own amcheck extension in ${replaced.join(", ")} was replaced by a fresh one from $libdir)`
      : "";
    if (r.code === 0)
      return result("amcheck", "pass", `heap and btree (heapallindexed) clean in ${dbs.join(", ")}${note}`);
    // exit 2 is also pg_amcheck's usage error: corruption is what it printed on stdout
    if (r.code === 2 && corruption.length > 0) {
      return result("amcheck", "fail", `corruption found: ${corruption.slice(0, 3).join(" | ")}`, {
        corruption,
      });
    }
    return result("amcheck", "error", `pg_amcheck exited with ${r.code}: ${lastLines(r.stderrTail, 2)}`);
  },
};

/** A pg_amcheck/psql pattern that matches exactly `name`. */
export function exactPattern(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Installs amcheck afresh in a schema of Attest's own in `db`, dropping the backup's copy first;
 * true when the backup had one. Event triggers are off by now (event-triggers.ts).
 */
async function freshAmcheck(ctx: CheckContext, db: string): Promise<boolean> {
  return withClient(ctx.sandbox, db, async (c) => {
    const had =
      (
        await c.query(
          "select 1 from pg_catalog.pg_extension where extname operator(pg_catalog.=) 'amcheck'::pg_catalog.name",
        )
      ).rowCount! > 0;
    if (had) await c.query("DROP EXTENSION amcheck CASCADE");
    const schema = `attest_amcheck_${randomBytes(4).toString("hex")}`;
    await c.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
    await c.query(`CREATE EXTENSION amcheck WITH SCHEMA ${quoteIdent(schema)}`);
    return had;
  });
}
