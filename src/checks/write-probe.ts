/** The restored copy accepts a write (it is a usable database, not a read-only husk). */
import { withClient } from "../runtimes/sql.js";
import type { Check } from "./check.js";
import { restoredDatabases, result } from "./helpers.js";

/** Creates, fills and drops a probe table in each restored database. */
export const writeProbeCheck: Check = {
  name: "write",
  enabled: (ctx) => ctx.config.write,
  async run(ctx) {
    for (const db of restoredDatabases(ctx)) {
      await withClient(ctx.sandbox, db, async (c) => {
        await c.query(
          "create table public.attest_write_probe (id int primary key, at timestamptz default now())",
        );
        await c.query(
          "insert into public.attest_write_probe (id) select pg_catalog.generate_series(1::pg_catalog.int4, 100::pg_catalog.int4)",
        );
        const r = await c.query<{ n: string }>("select count(*) as n from public.attest_write_probe");
        await c.query("drop table public.attest_write_probe");
        if (r.rows[0]?.n !== "100")
          throw new Error(`probe table returned ${r.rows[0]?.n} rows instead of 100`);
      });
    }
    return result("write", "pass", "accepted a write in every restored database");
  },
};
