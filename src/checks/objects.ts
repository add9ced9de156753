/**
 * Check `objects`: files and database restored together. A query in the restored database names
 * object keys (a table of attachments, say); every key must exist under a prefix of a configured
 * store (a bucket, or a local mirror directory). A missing object means the backup set cannot
 * bring the application back whole: `fail`. A query or store that cannot be read is `error`.
 */
import type pg from "pg";
import type { CheckResult } from "../model.js";
import { withClient } from "../runtimes/sql.js";
import { createStorage } from "../storage/create-storage.js";
import { type Storage, StorageError } from "../storage/storage.js";
import { describeError } from "../util/errors.js";
import type { CheckContext } from "./check.js";
import { result } from "./helpers.js";
import { type ObjectsCheckConfig, objectsCheckName } from "./objects-config.js";

/** Rows fetched from the query's cursor at a time. */
const BATCH = 5_000;
/** Up to this many keys, each is looked up (HEAD); beyond, the prefix is listed once. */
const LOOKUP_LIMIT = 200;
/** Missing keys named in the result. */
const NAMED = 10;

/** What the rows held and what was missing. */
interface Tally {
  referenced: number;
  skipped: number;
  missing: number;
  firstMissing: string[];
  mode: "lookup" | "listing";
  listed?: number;
}

/** The query ran but Attest could not use it (a configuration problem, not the backup's). */
class QueryError extends Error {}

/** Runs every configured object check, each its own result. */
export async function runObjectChecks(ctx: CheckContext): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const o of ctx.config.objects ?? []) {
    const t0 = Date.now();
    out.push({ ...(await runOne(ctx, o)), durationMs: Date.now() - t0 });
  }
  return out;
}

async function runOne(ctx: CheckContext, o: ObjectsCheckConfig): Promise<CheckResult> {
  const name = objectsCheckName(o);
  if (!ctx.restored.databases.includes(o.database))
    return result(name, "skip", `database ${o.database} is not in this backup`);
  if (!o.storage.config) return result(name, "error", `store ${o.storage.name} is not configured`);
  const prefix = keyPrefix(o.path);
  let store: Storage | undefined;
  try {
    store = await createStorage(o.storage.name, o.storage.config);
    const where = store.describe(prefix);
    const tally = await compare(ctx, o, store, prefix);
    const keys = `key${tally.referenced === 1 ? "" : "s"}`;
    const skipped = tally.skipped
      ? `; ${fmt(tally.skipped)} row${tally.skipped === 1 ? "" : "s"} with a NULL or empty key skipped`
      : "";
    const evidence = { where, ...tally };
    if (tally.missing === 0)
      return result(
        name,
        "pass",
        `${fmt(tally.referenced)} ${keys} referenced, all present under ${where}${skipped}`,
        evidence,
      );
    const more = tally.missing > tally.firstMissing.length ? ", …" : "";
    return result(
      name,
      "fail",
      `${fmt(tally.missing)} of ${fmt(tally.referenced)} referenced ${keys} missing under ${where}: ${tally.firstMissing.join(", ")}${more}${skipped}`,
      evidence,
    );
  } catch (err) {
    // a stopped drill ends as stopped, not as a check that could not read its store
    if (ctx.signal?.aborted) throw err;
    if (err instanceof QueryError) return result(name, "error", err.message);
    // the store refused or failed (its code is in the message), or the server went away
    return result(name, "error", `could not compare with the store: ${describeError(err)}`);
  } finally {
    store?.close();
  }
}

/**
 * Streams the query's keys through a cursor in a read-only transaction and looks each up: one
 * HEAD per key when there are few, else the prefix listed once into a set (the keys from the
 * database are never all held).
 */
async function compare(
  ctx: CheckContext,
  o: ObjectsCheckConfig,
  store: Storage,
  prefix: string,
): Promise<Tally> {
  const sql = o.sql.trim().replace(/;+\s*$/, "");
  return withClient(
    ctx.sandbox,
    o.database,
    async (c) => {
      await c.query("begin isolation level repeatable read read only");
      await c.query(`set local statement_timeout = ${Math.max(1, Math.round(o.timeout))}`);
      try {
        await c.query(`declare attest_objects no scroll cursor for ${sql}`);
      } catch (err) {
        throw new QueryError(`the objects query failed: ${describeError(err)}`, { cause: err });
      }
      const tally: Tally = { referenced: 0, skipped: 0, missing: 0, firstMissing: [], mode: "lookup" };
      let batch = await fetchBatch(c);
      let exists: (key: string) => Promise<boolean>;
      if (batch.length < BATCH && batch.length <= LOOKUP_LIMIT) {
        exists = (key) => lookUp(store, key, ctx);
      } else {
        tally.mode = "listing";
        const present = await listKeys(store, prefix, ctx);
        tally.listed = present.size;
        exists = async (key) => present.has(key);
      }
      while (batch.length > 0) {
        for (const raw of batch) {
          const key = keyOf(raw);
          if (key === undefined) {
            tally.skipped++;
            continue;
          }
          tally.referenced++;
          if (!(await exists(prefix + key))) {
            tally.missing++;
            if (tally.firstMissing.length < NAMED) tally.firstMissing.push(key);
          }
        }
        if (ctx.signal?.aborted) throw ctx.signal.reason;
        batch = batch.length < BATCH ? [] : await fetchBatch(c);
      }
      await c.query("commit");
      return tally;
    },
    "user",
  );
}

/** The next rows of the cursor; fewer than BATCH means the query is done. */
async function fetchBatch(c: pg.Client): Promise<unknown[][]> {
  try {
    const r = await c.query({ text: `fetch ${BATCH} from attest_objects`, rowMode: "array" });
    return r.rows as unknown[][];
  } catch (err) {
    throw new QueryError(`the objects query failed: ${describeError(err)}`, { cause: err });
  }
}

/** Whether one object exists; a key no object can have (`../x` in a local mirror) is missing. */
async function lookUp(store: Storage, key: string, ctx: CheckContext): Promise<boolean> {
  try {
    return (await store.stat(key, signalOpt(ctx))) !== undefined;
  } catch (err) {
    if (err instanceof StorageError && err.code === "InvalidKey") return false;
    throw err;
  }
}

/** Every key under `prefix`, as the store lists it page by page. */
async function listKeys(store: Storage, prefix: string, ctx: CheckContext): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const obj of store.list(prefix, signalOpt(ctx))) keys.add(obj.key);
  return keys;
}

/** The key a row names: its first column as text; NULL or empty is no key. */
function keyOf(row: unknown[]): string | undefined {
  const v = row[0];
  if (v === null || v === undefined) return undefined;
  const s = Buffer.isBuffer(v) ? v.toString("utf8") : String(v);
  return s === "" ? undefined : s;
}

/** The check's `path` as a key prefix: empty (the store's root) or ending in `/`. */
export function keyPrefix(path: string): string {
  return path === "" || path.endsWith("/") ? path : `${path}/`;
}

function signalOpt(ctx: CheckContext): { signal?: AbortSignal } {
  return ctx.signal ? { signal: ctx.signal } : {};
}

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}
