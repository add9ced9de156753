/** Small file and SQL helpers that work inside any sandbox through `exec` (as its own user). */
import { posix } from "node:path";
import type { Readable } from "node:stream";
import type { Sandbox } from "../../runtimes/runtime.js";
import { sessionOptions } from "../../runtimes/sql.js";
import type { RunResult } from "../../util/process.js";

/** Quotes a string for sh. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs an sh script inside the sandbox with positional arguments $1…. */
export function sandboxSh(
  sandbox: Sandbox,
  script: string,
  args: readonly string[],
  opts: {
    timeoutMs?: number;
    stdin?: string | Readable;
    allowFailure?: boolean;
    signal?: AbortSignal;
  } = {},
): Promise<RunResult> {
  return sandbox.exec("sh", ["-c", script, "sh", ...args], {
    timeoutMs: opts.timeoutMs ?? 60_000,
    ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
    ...(opts.allowFailure ? { allowFailure: true } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

/** Writes (or appends) a text file inside the sandbox, owned by the sandbox user. */
export async function writeSandboxFile(
  sandbox: Sandbox,
  path: string,
  text: string,
  mode: "write" | "append" = "write",
): Promise<void> {
  await sandboxSh(sandbox, mode === "append" ? 'cat >> "$1"' : 'cat > "$1"', [path], { stdin: text });
}

/** The unix socket directory the running server announced (line 5 of postmaster.pid). */
export async function socketDirOf(sandbox: Sandbox): Promise<string | undefined> {
  const r = await sandboxSh(
    sandbox,
    'sed -n 5p "$1" 2>/dev/null',
    [posix.join(sandbox.dataDir, "postmaster.pid")],
    {
      allowFailure: true,
      timeoutMs: 10_000,
    },
  );
  const dir = r.stdout.trim();
  return dir.startsWith("/") ? dir : undefined;
}

/** A SQL session over the server's unix socket, as a given role, through psql in the sandbox. */
export interface SocketSql {
  /** Runs SQL and returns psql's unaligned output; throws with psql's message. */
  query(sql: string, opts?: { database?: string; timeoutMs?: number; stdin?: boolean }): Promise<string>;
}

/** Creates a SocketSql for `user` on the socket in `socketDir`. */
export function socketSql(sandbox: Sandbox, socketDir: string, user: string): SocketSql {
  return {
    async query(sql, opts = {}) {
      const args = [
        "-X",
        "-At",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        socketDir,
        "-U",
        user,
        "-d",
        opts.database ?? "postgres",
      ];
      const r = await sandbox.exec("psql", opts.stdin ? [...args, "-f", "-"] : [...args, "-c", sql], {
        timeoutMs: opts.timeoutMs ?? 30_000,
        env: {
          PGHOST: socketDir,
          PGUSER: user,
          PGCONNECT_TIMEOUT: "5",
          // settings sent by the client outrank the restored cluster's ALTER DATABASE/ROLE … SET:
          // Attest's pinned session (no preload library), libraries only from $libdir
          PGOPTIONS: `${sessionOptions("attest")} -c dynamic_library_path=$libdir`,
        },
        ...(opts.stdin ? { stdin: sql } : {}),
      });
      return r.stdout.trim();
    },
  };
}
