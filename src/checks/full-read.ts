/** Reads every row of every table, detoasting every value: catches heap and TOAST damage. */
import { quoteIdent, withClient } from "../runtimes/sql.js";
import { describeError } from "../util/errors.js";
import type { Check, CheckContext } from "./check.js";
import { restoredDatabases, result } from "./helpers.js";

/** Row counts per database and table, collected while reading. */
export type RowCounts = Map<string, Map<string, number>>;

/** A relation the full read and the inventory look at. */
export interface ListedRelation {
  schema: string;
  name: string;
  /** r = table, p = partitioned table, m = materialized view. */
  kind: "r" | "p" | "m";
  /** False for a materialized view created WITH NO DATA (it cannot be read until refreshed). */
  populated: boolean;
  /** A table other tables inherit from (its rows are counted with ONLY). */
  parent: boolean;
}

const TABLES_SQL = `
  select n.nspname as schema, c.relname as name, c.relkind::pg_catalog.text as kind,
         c.relispopulated as populated,
         exists (select 1 from pg_catalog.pg_inherits i where i.inhparent operator(pg_catalog.=) c.oid) as parent
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid operator(pg_catalog.=) c.relnamespace
  where c.relkind operator(pg_catalog.=) any ('{r,p,m}'::pg_catalog."char"[])
    and n.nspname operator(pg_catalog.<>) 'pg_catalog'::pg_catalog.name
    and n.nspname operator(pg_catalog.<>) 'information_schema'::pg_catalog.name
    and n.nspname operator(pg_catalog.!~~) 'pg_toast%'::pg_catalog.text
    and n.nspname operator(pg_catalog.!~~) 'pg_temp%'::pg_catalog.text
  order by 1, 2`;

/** Lists tables, partitioned tables and materialized views of a database. */
export async function listTables(ctx: CheckContext, db: string): Promise<ListedRelation[]> {
  return withClient(ctx.sandbox, db, async (c) => (await c.query<ListedRelation>(TABLES_SQL)).rows);
}

/** Full read of every table; stores exact row counts for the inventory check. */
export const fullReadCheck: Check = {
  name: "full_read",
  enabled: (ctx) => ctx.config.full_read,
  async run(ctx) {
    const counts: RowCounts = new Map();
    let tables = 0;
    let rows = 0;
    let unpopulated = 0;
    const failures: string[] = [];
    for (const db of restoredDatabases(ctx)) {
      const perDb = new Map<string, number>();
      counts.set(db, perDb);
      await withClient(ctx.sandbox, db, async (c) => {
        const list = (await c.query<ListedRelation>(TABLES_SQL)).rows;
        for (const t of list) {
          if (ctx.signal?.aborted) throw ctx.signal.reason;
          // a partitioned table has no storage: its partitions are read as tables of their own
          if (t.kind === "p") continue;
          // WITH NO DATA on purpose (pagila's rental_by_category): nothing to read, nothing damaged
          if (t.kind === "m" && !t.populated) {
            unpopulated++;
            continue;
          }
          const rel = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
          try {
            // ONLY: an inheritance parent's rows, not its children's (read on their own);
            // the row's text form forces every column, TOASTed ones included, to be read and
            // decompressed; record_out, not t::text (a cast from the table's row type is the backup's to define)
            const r = await c.query<{ n: string }>(
              `select count(*) as n, pg_catalog.sum(pg_catalog.length(pg_catalog.textin(pg_catalog.record_out(t)))) from only ${rel} t`,
            );
            const n = Number(r.rows[0]?.n ?? 0);
            perDb.set(`${t.schema}.${t.name}`, n);
            rows += n;
            tables++;
          } catch (err) {
            failures.push(`${db}.${t.schema}.${t.name}: ${describeError(err)}`);
          }
        }
      });
    }
    ctx.shared.rowCounts = counts;
    if (failures.length) {
      return result(
        "full_read",
        "fail",
        `${failures.length} table(s) unreadable: ${failures.slice(0, 3).join("; ")}`,
        { failures },
      );
    }
    const skipped = unpopulated
      ? `; ${unpopulated} materialized view(s) not populated (WITH NO DATA), skipped`
      : "";
    return result("full_read", "pass", `read ${rows} rows in ${tables} tables${skipped}`);
  },
};
