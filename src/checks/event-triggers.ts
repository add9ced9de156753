/**
 * Keeps a restored database's event triggers from firing on Attest's own DDL (amcheck's
 * CREATE EXTENSION, the write probe's table): they are the backup's code, and a check must not
 * run it or be steered by it. The sandbox is a throwaway copy, so they are simply disabled.
 */

import type { CheckResult } from "../model.js";
import { quoteIdent, withClient } from "../runtimes/sql.js";
import type { CheckContext } from "./check.js";
import { restoredDatabases, result } from "./helpers.js";

/** Disables every enabled event trigger of the restored databases; a record when there were any. */
export async function disableEventTriggers(ctx: CheckContext): Promise<CheckResult | undefined> {
  const disabled: string[] = [];
  for (const db of restoredDatabases(ctx)) {
    await withClient(ctx.sandbox, db, async (c) => {
      const r = await c.query<{ name: string }>(
        "select evtname as name from pg_catalog.pg_event_trigger where evtenabled operator(pg_catalog.<>) 'D'::pg_catalog.\"char\" order by 1",
      );
      // ALTER EVENT TRIGGER is not itself captured by event triggers
      for (const t of r.rows) {
        await c.query(`ALTER EVENT TRIGGER ${quoteIdent(t.name)} DISABLE`);
        disabled.push(`${db}.${t.name}`);
      }
    });
  }
  if (disabled.length === 0) return undefined;
  return result(
    "event_triggers",
    "skip",
    `${disabled.length} event trigger(s) of the backup disabled before Attest's checks: ${disabled.slice(0, 5).join(", ")}`,
    { disabled },
  );
}
