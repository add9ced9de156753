/** Freshness: the newest data timestamp in the restored copy, giving the measured RPO. */
import { withClient } from "../runtimes/sql.js";
import { formatDuration } from "../util/duration.js";
import type { Check } from "./check.js";
import { result } from "./helpers.js";

/** Runs the freshness query. */
export const freshnessCheck: Check = {
  name: "freshness",
  enabled: (ctx) => ctx.config.freshness !== undefined,
  async run(ctx) {
    const f = ctx.config.freshness!;
    if (!ctx.restored.databases.includes(f.database))
      return result("freshness", "skip", `database ${f.database} is not in this backup`);
    const value = await withClient(
      ctx.sandbox,
      f.database,
      async (c) => {
        const r = await c.query({ text: f.sql, rowMode: "array" });
        return (r.rows[0] as unknown[] | undefined)?.[0] ?? null;
      },
      "user",
    );
    if (value === null)
      return result("freshness", "fail", "the freshness query returned no timestamp (no data?)");
    const t = value instanceof Date ? value : new Date(String(value));
    if (Number.isNaN(t.getTime()))
      return result("freshness", "error", `the freshness query returned ${String(value)}, not a timestamp`);
    ctx.shared.newestData = t.toISOString();
    const lag = ctx.drillStartedAt.getTime() - t.getTime();
    return result(
      "freshness",
      "pass",
      `newest data ${t.toISOString()} (${formatDuration(lag)} before the drill)`,
    );
  },
};
