/**
 * The guard between a restore and Attest's own queries: a backup (its WAL, its dump's SQL) can
 * add to pg_catalog an overload, an operator or a cast between built-in types that a query
 * would pick over the built-in. Attest writes its SQL with exact built-in signatures, but a
 * catalog that shadows built-ins is one Attest cannot vouch for: such a restore ends `error`.
 */
import type pg from "pg";
import { VerifierError } from "../util/errors.js";

/** A built-in object: made by initdb, below the first oid a user object gets. */
const BUILTIN = "operator(pg_catalog.<) 16384::pg_catalog.oid";

/**
 * The functions built-in catalog rows call: an aggregate's support functions, an operator's
 * code and estimators, a type's I/O, a cast's function, an index support procedure. Each column
 * apart (no unnest, which an overload could shadow); reg* to oid is a built-in binary cast.
 */
function builtinFunctionRefs(major: number): string {
  return [
    ...[
      "aggtransfn",
      "aggfinalfn",
      "aggcombinefn",
      "aggserialfn",
      "aggdeserialfn",
      "aggmtransfn",
      "aggminvtransfn",
      "aggmfinalfn",
    ].map(
      (c) =>
        `select a.${c}::pg_catalog.oid from pg_catalog.pg_aggregate a where a.aggfnoid::pg_catalog.oid ${BUILTIN}`,
    ),
    ...["oprcode", "oprrest", "oprjoin"].map(
      (c) => `select o.${c}::pg_catalog.oid from pg_catalog.pg_operator o where o.oid ${BUILTIN}`,
    ),
    ...[
      "typinput",
      "typoutput",
      "typreceive",
      "typsend",
      "typmodin",
      "typmodout",
      "typanalyze",
      // generic subscripting came with PostgreSQL 14
      ...(major >= 14 ? ["typsubscript"] : []),
    ].map((c) => `select t.${c}::pg_catalog.oid from pg_catalog.pg_type t where t.oid ${BUILTIN}`),
    `select c.castfunc from pg_catalog.pg_cast c where c.oid ${BUILTIN}`,
    `select ap.amproc::pg_catalog.oid from pg_catalog.pg_amproc ap where ap.oid ${BUILTIN}`,
  ].join("\n union all ");
}

/**
 * Lists the shadowing objects, itself hijack-proof: every operator is `OPERATOR(pg_catalog.…)`
 * on operands typed exactly as a built-in's, every literal typed, no cast that a CREATE CAST
 * could replace (oid → reg* and regproc → oid are built-in binary casts; reg* values are read
 * in their output form, uncast). Functions and operators count in pg_catalog only, with a
 * language other than C/internal (pg_dump 8.x's plpgsql handlers are C), functions only when
 * they overload a built-in's name (Attest calls nothing else: adminpack's SQL
 * pg_file_rename(text,text) in pg_catalog is no shadow); casts count anywhere
 * when both of their types are built-in (the only casts Attest's queries could meet). A built-in
 * row rewired by a backup's DML (UPDATE pg_aggregate … aggfinalfn, pg_operator.oprcode, a type's
 * I/O, a cast, an index support procedure) to a function of its own counts too, and so does a
 * built-in function whose language is no longer internal, C or SQL. Not seen: a built-in rewired
 * to another built-in, an edited aggregate initial value or SQL body (no pristine copy to compare).
 */
export function catalogShadowsSql(major: number): string {
  return `
select 'function' as kind, p.oid::pg_catalog.regprocedure as fn, null::pg_catalog.regoperator as op,
       null::pg_catalog.regtype as src, null::pg_catalog.regtype as dst, l.lanname as lang
  from pg_catalog.pg_proc p join pg_catalog.pg_language l on l.oid operator(pg_catalog.=) p.prolang
 where p.pronamespace operator(pg_catalog.=) 11::pg_catalog.oid
   and p.oid operator(pg_catalog.>=) 16384::pg_catalog.oid
   and l.lanname operator(pg_catalog.<>) 'c'::pg_catalog.name
   and l.lanname operator(pg_catalog.<>) 'internal'::pg_catalog.name
   and exists (select from pg_catalog.pg_proc b
                where b.proname operator(pg_catalog.=) p.proname
                  and b.oid operator(pg_catalog.<) 16384::pg_catalog.oid)
union all
select 'operator', null, o.oid::pg_catalog.regoperator, null, null, l.lanname
  from pg_catalog.pg_operator o
  join pg_catalog.pg_proc p on p.oid operator(pg_catalog.=) o.oprcode::pg_catalog.oid
  join pg_catalog.pg_language l on l.oid operator(pg_catalog.=) p.prolang
 where o.oprnamespace operator(pg_catalog.=) 11::pg_catalog.oid
   and o.oid operator(pg_catalog.>=) 16384::pg_catalog.oid
   and l.lanname operator(pg_catalog.<>) 'c'::pg_catalog.name
   and l.lanname operator(pg_catalog.<>) 'internal'::pg_catalog.name
union all
select 'cast', null, null, c.castsource::pg_catalog.regtype, c.casttarget::pg_catalog.regtype, l.lanname
  from pg_catalog.pg_cast c
  left join pg_catalog.pg_proc p on p.oid operator(pg_catalog.=) c.castfunc
  left join pg_catalog.pg_language l on l.oid operator(pg_catalog.=) p.prolang
 where c.oid operator(pg_catalog.>=) 16384::pg_catalog.oid
   and c.castsource operator(pg_catalog.<) 16384::pg_catalog.oid
   and c.casttarget operator(pg_catalog.<) 16384::pg_catalog.oid
union all
select 'redirect', p.oid::pg_catalog.regprocedure, null, null, null, l.lanname
  from pg_catalog.pg_proc p join pg_catalog.pg_language l on l.oid operator(pg_catalog.=) p.prolang
 where (p.oid operator(pg_catalog.>=) 16384::pg_catalog.oid
        and p.oid operator(pg_catalog.=) any (array(${builtinFunctionRefs(major)})))
    or (p.oid operator(pg_catalog.<) 16384::pg_catalog.oid
        and l.lanname operator(pg_catalog.<>) 'internal'::pg_catalog.name
        and l.lanname operator(pg_catalog.<>) 'c'::pg_catalog.name
        and l.lanname operator(pg_catalog.<>) 'sql'::pg_catalog.name)
 limit 50`;
}

/** One row of catalogShadowsSql, as text. */
export interface ShadowRow {
  kind: string;
  fn: string | null;
  op: string | null;
  src: string | null;
  dst: string | null;
  lang: string | null;
}

/** How one shadowing object is named in a reason: `pg_catalog.pg_read_file(text,integer,integer,boolean) (plpgsql)`. */
export function describeShadow(r: ShadowRow): string {
  const lang = r.lang ? ` (${r.lang})` : " (without function)";
  if (r.kind === "function") return `function pg_catalog.${stripSchema(r.fn ?? "?")}${lang}`;
  if (r.kind === "operator") return `operator pg_catalog.${stripSchema(r.op ?? "?")}${lang}`;
  if (r.kind === "redirect")
    return `a built-in aggregate, operator, type, cast or function rewired to ${r.fn ?? "?"}${lang}`;
  return `cast (${r.src ?? "?"} AS ${r.dst ?? "?"})${lang}`;
}

/** reg* output qualifies a name only when search_path does not reach it. */
function stripSchema(s: string): string {
  return s.startsWith("pg_catalog.") ? s.slice("pg_catalog.".length) : s;
}

/** Throws the drill's `error` when the rows name any shadowing object in `database`. */
export function refuseShadows(rows: readonly ShadowRow[], database: string): void {
  if (rows.length === 0) return;
  const named = rows.slice(0, 4).map(describeShadow).join("; ");
  const more = rows.length > 4 ? ` and ${rows.length - 4} more` : "";
  throw new VerifierError(
    `the restored catalog of database ${JSON.stringify(database)} adds objects that shadow PostgreSQL's built-ins ` +
      `(${named}${more}); Attest cannot verify a backup whose catalog could redirect its own queries`,
  );
}

/** Runs the guard on one database over a node-postgres client of Attest's pinned session. */
export async function guardCatalog(c: pg.Client, database: string, major: number): Promise<void> {
  const r = await c.query<ShadowRow>(catalogShadowsSql(major));
  refuseShadows(r.rows, database);
}

/** Parses the guard's rows as `psql -At` prints them (fields joined by `|`, one row a line). */
export function parseShadowLines(text: string): ShadowRow[] {
  const rows: ShadowRow[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const f = line.split("|");
    const kind = f[0] ?? "";
    const lang = f.at(-1) || null;
    const mid = f.slice(1, -1);
    // the middle fields are fn|op|src|dst; a name holding `|` only blurs the description
    if (kind === "function" || kind === "redirect")
      rows.push({ kind, fn: mid.join("|").replace(/\|+$/, ""), op: null, src: null, dst: null, lang });
    else if (kind === "operator")
      rows.push({
        kind,
        fn: null,
        op: mid.slice(1).join("|").replace(/\|+$/, ""),
        src: null,
        dst: null,
        lang,
      });
    else rows.push({ kind, fn: null, op: null, src: mid[2] ?? null, dst: mid[3] ?? null, lang });
  }
  return rows;
}
