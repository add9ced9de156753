/** The restored server runs, accepts connections and is out of recovery. */
import { withClient } from "../runtimes/sql.js";
import type { Check } from "./check.js";
import { result } from "./helpers.js";

/** Server up and consistent. */
export const serverUpCheck: Check = {
  name: "server_up",
  enabled: () => true,
  async run(ctx) {
    return withClient(ctx.sandbox, "postgres", async (c) => {
      const r = await c.query<{ v: string; rec: boolean }>(
        "select pg_catalog.version() as v, pg_catalog.pg_is_in_recovery() as rec",
      );
      const row = r.rows[0]!;
      if (row.rec) return result("server_up", "fail", "server is still in recovery");
      return result("server_up", "pass", row.v.split(" on ")[0] ?? row.v);
    });
  },
};
