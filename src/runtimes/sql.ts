/** Talking SQL to a sandbox from Attest itself (node-postgres). */
import pg from "pg";
import type { Sandbox } from "./runtime.js";

/** Runs `fn` with a connected client to `database`; the client is always closed. */
export async function withClient<T>(
  sandbox: Sandbox,
  database: string,
  fn: (c: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({
    ...sandbox.connection,
    database,
    connectionTimeoutMillis: 10_000,
    application_name: "attest",
  });
  client.on("error", () => {
    // a server that dies mid-query surfaces as the query's rejection; nothing to add here
  });
  await client.connect();
  try {
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
