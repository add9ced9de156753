/** A sandbox that is a PostgreSQL cluster in a private directory on this host. */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { describeError } from "../../util/errors.js";
import type { OsUser } from "../../util/os-user.js";
import { lastLines, type RunResult, runProcess } from "../../util/process.js";
import { retryUntil } from "../../util/retry.js";
import type { Sandbox, SandboxConnection, SandboxExecOptions, StartOptions } from "../runtime.js";

/** Settings that make a throwaway cluster fast; durability is worthless here. */
export const THROWAWAY_SETTINGS: Readonly<Record<string, string>> = {
  fsync: "off",
  synchronous_commit: "off",
  full_page_writes: "off",
  max_wal_size: "8GB",
  checkpoint_timeout: "1h",
  maintenance_work_mem: "256MB",
  autovacuum: "off",
  log_min_messages: "warning",
  log_checkpoints: "off",
};

/** Everything a local sandbox is made of. */
export interface LocalSandboxParts {
  id: string;
  dir: string;
  binDir: string;
  pgMajor: number;
  port: number;
  password: string;
  user: OsUser | undefined;
  /** Host data directory (inside `dir`, or a volume runtime's mount). */
  dataDir: string;
  /** Called once destroy() has removed everything. */
  onDestroyed: () => void;
}

/** A local sandbox; construct through LocalRuntime.provision. */
export class LocalSandbox implements Sandbox {
  readonly runtime = "local";
  readonly id: string;
  readonly pgMajor: number;
  readonly connection: SandboxConnection;
  readonly dataDir: string;
  readonly #p: LocalSandboxParts;
  #destroyed = false;

  constructor(parts: LocalSandboxParts) {
    this.#p = parts;
    this.id = parts.id;
    this.pgMajor = parts.pgMajor;
    this.dataDir = parts.dataDir;
    this.connection = { host: "127.0.0.1", port: parts.port, user: "postgres", password: parts.password };
  }

  /** The sandbox's private directory on the host. */
  get dir(): string {
    return this.#p.dir;
  }

  inputPath(hostPath: string): string {
    return hostPath;
  }

  #env(extra?: Record<string, string>): NodeJS.ProcessEnv {
    return {
      PATH: `${this.#p.binDir}:/usr/local/bin:/usr/bin:/bin`,
      HOME: this.#p.dir,
      LANG: "C.UTF-8",
      PGHOST: "127.0.0.1",
      PGPORT: String(this.#p.port),
      PGUSER: "postgres",
      PGDATABASE: "postgres",
      PGPASSFILE: join(this.#p.dir, "pgpass"),
      PGCONNECT_TIMEOUT: "10",
      ...extra,
    };
  }

  #program(program: string): string {
    const inBin = join(this.#p.binDir, program);
    return existsSync(inBin) ? inBin : program;
  }

  exec(program: string, args: readonly string[], opts: SandboxExecOptions): Promise<RunResult> {
    return runProcess(this.#program(program), args, {
      ...opts,
      env: this.#env(opts.env),
      cwd: this.#p.dir,
      uid: this.#p.user?.uid,
      gid: this.#p.user?.gid,
    });
  }

  async start(opts: StartOptions): Promise<void> {
    const settings: Record<string, string> = {
      ...THROWAWAY_SETTINGS,
      ...opts.settings,
      port: String(this.#p.port),
      listen_addresses: "127.0.0.1",
      unix_socket_directories: join(this.#p.dir, "sock"),
      // settings a backup's own postgresql.conf may carry that must not act on this host
      archive_mode: "off",
      archive_command: "",
      logging_collector: "off",
      ...(opts.settings?.archive_mode ? { archive_mode: opts.settings.archive_mode } : {}),
    };
    const args = ["-D", this.dataDir];
    for (const [k, v] of Object.entries(settings)) args.push("-c", `${k}=${v}`);
    const logFd = openSync(join(this.#p.dir, "server.log"), "a", 0o600);
    const child = spawn(join(this.#p.binDir, "postgres"), args, {
      detached: true,
      stdio: ["ignore", logFd, logFd],
      uid: this.#p.user?.uid,
      gid: this.#p.user?.gid,
      env: this.#env(),
      cwd: this.#p.dir,
    });
    closeSync(logFd);
    let exited: string | undefined;
    child.on("exit", (code, sig) => {
      exited = sig ? `killed by ${sig}` : `exited with code ${code}`;
    });
    child.on("error", (err) => {
      exited = `could not start: ${err.message}`;
    });
    child.unref();
    const check = async (): Promise<true | undefined> => {
      if (exited) throw new StartError(`postgres ${exited}: ${lastLines(await this.logTail(40), 4)}`);
      // the postmaster creates the pid file empty and fills it a moment later
      if (opts.wait === "running") return postmasterPid(this.dataDir) !== undefined ? true : undefined;
      const c = new pg.Client({ ...this.connection, database: "postgres", connectionTimeoutMillis: 5000 });
      try {
        await c.connect();
        await c.query("select 1");
        return true;
      } finally {
        await c.end().catch(() => {});
      }
    };
    // retryUntil retries on errors: a dead server is returned as a value so the wait ends at once
    const outcome = await retryUntil<true | StartError>(
      async () => {
        try {
          return await check();
        } catch (err) {
          if (err instanceof StartError) return err;
          throw err;
        }
      },
      {
        timeoutMs: opts.timeoutMs,
        what: "the sandbox server to accept connections",
        signal: opts.signal,
        intervalMs: 50,
      },
    );
    if (outcome instanceof StartError) throw outcome;
  }

  async isRunning(): Promise<boolean> {
    const pid = postmasterPid(this.dataDir);
    if (pid === undefined) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  async stop(opts: { timeoutMs: number }): Promise<void> {
    await stopPostmaster(this.dataDir, opts.timeoutMs);
  }

  async logTail(lines: number): Promise<string> {
    try {
      const text = readFileSync(join(this.#p.dir, "server.log"), "utf8");
      return text
        .split("\n")
        .slice(-lines - 1)
        .join("\n");
    } catch {
      return "";
    }
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    try {
      await stopPostmaster(this.dataDir, 15_000);
    } finally {
      await rm(this.#p.dir, { recursive: true, force: true, maxRetries: 3 });
      this.#p.onDestroyed();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}

class StartError extends Error {}

/** The postmaster pid recorded in a data directory, if any. */
export function postmasterPid(dataDir: string): number | undefined {
  try {
    const first = readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0];
    const pid = Number(first);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Stops the postmaster of a data directory: fast shutdown, then immediate, then SIGKILL. */
export async function stopPostmaster(dataDir: string, timeoutMs: number): Promise<void> {
  const pid = postmasterPid(dataDir);
  if (pid === undefined) return;
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const [sig, share] of [
    ["SIGINT", 0.6],
    ["SIGQUIT", 0.3],
    ["SIGKILL", 0.1],
  ] as const) {
    if (!alive()) return;
    try {
      process.kill(pid, sig);
    } catch {
      return;
    }
    try {
      await retryUntil(async () => (alive() ? undefined : true), {
        timeoutMs: Math.max(500, timeoutMs * share),
        what: `postmaster ${pid} to exit after ${sig}`,
        intervalMs: 50,
      });
      return;
    } catch (err) {
      if (sig === "SIGKILL") throw new Error(`could not stop postmaster ${pid}: ${describeError(err)}`);
    }
  }
}
