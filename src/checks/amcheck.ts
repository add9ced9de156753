/** pg_amcheck: heap and B-tree verification with --heapallindexed over every restored database. */
import { lastLines } from "../util/process.js";
import type { Check } from "./check.js";
import { restoredDatabases, result } from "./helpers.js";

/** pg_amcheck over all restored databases. */
export const amcheckCheck: Check = {
  name: "amcheck",
  enabled: (ctx) => ctx.config.amcheck,
  async run(ctx) {
    const dbs = restoredDatabases(ctx);
    if (dbs.length === 0) return result("amcheck", "skip", "no database was restored");
    const args = ["--heapallindexed", "--install-missing", "--no-password", "--jobs", "2"];
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
    if (r.code === 0)
      return result("amcheck", "pass", `heap and btree (heapallindexed) clean in ${dbs.join(", ")}`);
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
