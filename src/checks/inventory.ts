/** Inventory of the restored copy, compared with the previous passing drill of the same series. */
import type { Inventory } from "../model.js";
import { quoteIdent, withClient } from "../runtimes/sql.js";
import type { Check, CheckContext } from "./check.js";
import { listTables } from "./full-read.js";
import { restoredDatabases, result } from "./helpers.js";

/** Extensions Attest itself installs, left out of the inventory. */
const OWN_EXTENSIONS = new Set(["amcheck"]);

async function collect(ctx: CheckContext): Promise<Inventory> {
  const inv: Inventory = { databases: [], roles: [] };
  inv.roles = await withClient(ctx.sandbox, "postgres", async (c) =>
    (
      await c.query<{ r: string }>(
        // base catalogs only (a system view can be redefined by the backup), operators and
        // literals with a built-in's exact types (a closer overload cannot be added)
        "select rolname as r from pg_catalog.pg_authid where rolname operator(pg_catalog.!~) '^pg_'::pg_catalog.text order by 1",
      )
    ).rows.map((r) => r.r),
  );
  for (const db of restoredDatabases(ctx)) {
    const known = ctx.shared.rowCounts?.get(db);
    const listed = await listTables(ctx, db);
    const matviews = listed.filter((t) => t.kind === "m").map((t) => `${t.schema}.${t.name}`);
    const tables = await Promise.all(
      listed
        .filter((t) => t.kind !== "m")
        .map(async (t) => {
          const name = `${t.schema}.${t.name}`;
          // a partitioned table has no rows of its own; its partitions are listed with theirs
          if (t.kind === "p") return { name, rows: 0, kind: "partitioned" as const };
          const rows =
            known?.get(name) ??
            (await withClient(ctx.sandbox, db, async (c) => {
              // ONLY: an inheritance parent's children are counted once, as themselves
              const r = await c.query<{ n: string }>(
                `select count(*) as n from only ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`,
              );
              return Number(r.rows[0]?.n ?? 0);
            }));
          return t.parent ? { name, rows, kind: "parent" as const } : { name, rows };
        }),
    );
    const facts = await withClient(ctx.sandbox, db, async (c) => {
      const q = async (sql: string) => (await c.query<{ v: string }>(sql)).rows.map((r) => r.v);
      return {
        schemas: await q(
          "select nspname as v from pg_catalog.pg_namespace where nspname operator(pg_catalog.!~) '^pg_'::pg_catalog.text and nspname operator(pg_catalog.<>) 'information_schema'::pg_catalog.name order by 1",
        ),
        indexes: Number(
          (
            await q(
              `select count(*) as v from pg_catalog.pg_index x
               join pg_catalog.pg_class c on c.oid operator(pg_catalog.=) x.indrelid
               join pg_catalog.pg_class i on i.oid operator(pg_catalog.=) x.indexrelid
               join pg_catalog.pg_namespace n on n.oid operator(pg_catalog.=) c.relnamespace
              where c.relkind operator(pg_catalog.=) any ('{r,m,p}'::pg_catalog."char"[])
                and i.relkind operator(pg_catalog.=) any ('{i,I}'::pg_catalog."char"[])
                and nspname operator(pg_catalog.!~) '^pg_'::pg_catalog.text and nspname operator(pg_catalog.<>) 'information_schema'::pg_catalog.name`,
            )
          )[0],
        ),
        sequences: Number(
          (
            await q(`select count(*) as v from pg_catalog.pg_sequence s join pg_catalog.pg_class c on c.oid operator(pg_catalog.=) s.seqrelid
               where not pg_catalog.pg_is_other_temp_schema(c.relnamespace)`)
          )[0],
        ),
        views: Number(
          (
            await q(
              `select count(*) as v from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid operator(pg_catalog.=) c.relnamespace
               where c.relkind operator(pg_catalog.=) any ('{v,m}'::pg_catalog."char"[]) and nspname operator(pg_catalog.!~) '^pg_'::pg_catalog.text and nspname operator(pg_catalog.<>) 'information_schema'::pg_catalog.name`,
            )
          )[0],
        ),
        extensions: (await q("select extname as v from pg_catalog.pg_extension order by 1")).filter(
          (e) => !OWN_EXTENSIONS.has(e),
        ),
      };
    });
    inv.databases.push({
      name: db,
      tables: tables.sort((a, b) => a.name.localeCompare(b.name)),
      ...facts,
      matviews,
    });
  }
  return inv;
}

/** Differences that matter between a previous inventory and this one. */
export function compareInventories(prev: Inventory, cur: Inventory, tolerance: number): string[] {
  const findings: string[] = [];
  for (const pdb of prev.databases) {
    const cdb = cur.databases.find((d) => d.name === pdb.name);
    if (!cdb) {
      findings.push(`database ${pdb.name} is missing`);
      continue;
    }
    const current = new Map(cdb.tables.map((t) => [t.name, t]));
    // inventories written before matviews were listed apart had them among the tables
    const matviews = new Set(cdb.matviews ?? []);
    for (const t of pdb.tables) {
      const cur = current.get(t.name);
      if (cur === undefined) {
        if (!matviews.has(t.name))
          findings.push(`table ${pdb.name}.${t.name} disappeared (had ${t.rows} rows)`);
        continue;
      }
      // a parent counted another way before (children included) is not comparable; its
      // partitions and children are compared one by one
      if (cur.kind !== t.kind || t.rows === 0) continue;
      const lost = t.rows - cur.rows;
      if (lost / t.rows > tolerance)
        findings.push(
          `table ${pdb.name}.${t.name} lost ${lost} of ${t.rows} rows (${Math.round((lost / t.rows) * 100)}% > ${Math.round(tolerance * 100)}%)`,
        );
    }
    for (const e of pdb.extensions)
      if (!cdb.extensions.includes(e)) findings.push(`extension ${e} missing in ${pdb.name}`);
  }
  return findings;
}

/** Collects the inventory and compares it. */
export const inventoryCheck: Check = {
  name: "inventory",
  enabled: () => true,
  async run(ctx) {
    const inv = await collect(ctx);
    ctx.shared.inventory = inv;
    const tables = inv.databases.reduce((n, d) => n + d.tables.length, 0);
    const rows = inv.databases.reduce((n, d) => n + d.tables.reduce((m, t) => m + t.rows, 0), 0);
    const summary = `${inv.databases.length} database(s), ${tables} tables, ${rows} rows, ${inv.roles.length} roles`;
    // a point-in-time drill reaches an earlier state on purpose: fewer rows are expected there
    const pitr = ctx.plan.target?.kind === "time" || ctx.plan.target?.kind === "lsn";
    if (pitr) return result("inventory", "pass", `${summary}; not compared (point-in-time target)`);
    if (!ctx.config.inventory.compare || !ctx.previousInventory) {
      return result(
        "inventory",
        "pass",
        `${summary}${ctx.config.inventory.compare ? "; no previous passing drill to compare with" : ""}`,
      );
    }
    const findings = compareInventories(ctx.previousInventory, inv, ctx.config.inventory.row_drop_tolerance);
    if (findings.length)
      return result(
        "inventory",
        "warn",
        `${summary}; vs previous passing drill: ${findings.slice(0, 5).join("; ")}`,
        { findings },
      );
    return result("inventory", "pass", `${summary}; consistent with the previous passing drill`);
  },
};
