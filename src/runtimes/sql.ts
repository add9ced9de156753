/** Talking SQL to a sandbox from Attest itself (node-postgres). */
import pg from "pg";
import type { Sandbox } from "./runtime.js";

/**
 * Session settings of every Attest connection. A restored database is hostile: its own
 * `ALTER DATABASE/ROLE … SET` (search_path, role, read-only, timeouts, tablespaces) must not steer
 * Attest's queries, and settings sent at connection time override those.
 */
export const PINNED_SESSION: Readonly<Record<string, string>> = {
  search_path: "pg_catalog",
  role: "none",
  default_transaction_read_only: "off",
  default_transaction_isolation: "read committed",
  statement_timeout: "0",
  lock_timeout: "0",
  idle_in_transaction_session_timeout: "0",
  default_tablespace: "",
  temp_tablespaces: "",
  default_table_access_method: "heap",
  session_replication_role: "origin",
  // a library the backup names (ALTER DATABASE … SET session_preload_libraries) is not loaded into Attest's sessions
  session_preload_libraries: "",
  local_preload_libraries: "",
  DateStyle: "ISO",
  IntervalStyle: "postgres",
  TimeZone: "UTC",
};

/** How a session is pinned: `attest` (everything) or `user` (a user's own SQL: their search_path). */
export type SessionKind = "attest" | "user";

/** The startup `options` string for a session of `kind`. */
export function sessionOptions(kind: SessionKind = "attest"): string {
  return Object.entries(PINNED_SESSION)
    .filter(([k]) => kind === "attest" || k !== "search_path")
    .map(([k, v]) => `-c ${k}=${v.replace(/[\\ ]/g, (c) => `\\${c}`)}`)
    .join(" ");
}

/**
 * Runs `fn` with a connected client to `database`; the client is always closed. Attest's own
 * queries (`kind: "attest"`) run with search_path=pg_catalog; a user's assertion keeps the
 * database's search_path but every other pinned setting.
 */
export async function withClient<T>(
  sandbox: Sandbox,
  database: string,
  fn: (c: pg.Client) => Promise<T>,
  kind: SessionKind = "attest",
): Promise<T> {
  const client = new pg.Client({
    ...sandbox.connection,
    database,
    connectionTimeoutMillis: 10_000,
    application_name: "attest",
    options: sessionOptions(kind),
  });
  client.on("error", () => {
    // a server that dies mid-query surfaces as the query's rejection; nothing to add here
  });
  await client.connect();
  try {
    // a user's assertion names its tables through the database's search_path, but the built-in
    // functions and operators it calls come first, so the backup cannot shadow them (evil.count)
    if (kind === "user")
      await client.query(
        "select pg_catalog.set_config('search_path'::pg_catalog.text, 'pg_catalog, '::pg_catalog.text operator(pg_catalog.||) pg_catalog.current_setting('search_path'::pg_catalog.text), false)",
      );
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Quotes an SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quotes an SQL string literal. */
export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
