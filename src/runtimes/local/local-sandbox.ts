/**
 * A sandbox that is a PostgreSQL cluster in a private directory on this host. Every process of it
 * (the server, initdb, the restore tools, the shells of physical restores) runs confined
 * (confine.ts): no network, only its own directory and its inputs, a dedicated uid. The server
 * listens on a Unix socket in the sandbox directory only; Attest connects through that socket.
 */
import { type ChildProcess, spawn } from "node:child_process";
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { join, relative } from "node:path";
import pg from "pg";
import { describeError, VerifierError } from "../../util/errors.js";
import type { OsUser } from "../../util/os-user.js";
import { lastLines, type RunResult, runProcess } from "../../util/process.js";
import { retryUntil } from "../../util/retry.js";
import { unmountUnder } from "../noexec-mounts.js";
import type { Sandbox, SandboxConnection, SandboxExecOptions, StartOptions } from "../runtime.js";
import { handOverSocketDir, takeSocketDir } from "../socket-dir.js";
import { takeOutOfReach } from "../taken-file.js";
import { type ConfinementMode, confinedArgv, isInside } from "./confine.js";
import type { SandboxCgroup } from "./sandbox-cgroup.js";

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
  /** How processes are confined. */
  confinement: ConfinementMode;
  /** Host paths every process may read (inputs, a bin directory outside /usr). */
  readOnly: readonly string[];
  /** Where each read-only path is bound from, when not itself (a noexec bind of it). */
  readOnlyFrom?: ReadonlyMap<string, string>;
  /** Where a host input path is seen inside (a private copy when the original was unreadable). */
  inputMap: ReadonlyMap<string, string>;
  /** Process and per-process memory limits. */
  limits: { maxProcesses: number; maxProcessBytes?: number };
  /** What the drill record should say about this sandbox. */
  notes: readonly string[];
  /** The sandbox's control group, when this host gives one. */
  cgroup?: SandboxCgroup;
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
  readonly notes: readonly string[];
  readonly confinement: string;
  readonly #p: LocalSandboxParts;
  #server: ChildProcess | undefined;
  #destroyed = false;
  #taken = 0;

  constructor(parts: LocalSandboxParts) {
    this.#p = parts;
    this.id = parts.id;
    this.pgMajor = parts.pgMajor;
    this.dataDir = parts.dataDir;
    this.notes = parts.notes;
    this.confinement =
      parts.confinement === "bwrap"
        ? `bubblewrap (own user, mount, pid, network, ipc and uts namespaces; no network; uid ${parts.user?.name ?? process.getuid?.()})`
        : "none (sandbox.confinement: none): sandbox processes ran on the host's namespaces";
    // a Unix socket in the sandbox directory is the only way in: the server listens on no port
    this.connection = {
      host: join(parts.dir, "sock"),
      port: parts.port,
      user: "postgres",
      password: parts.password,
    };
  }

  /** The sandbox's private directory on the host. */
  get dir(): string {
    return this.#p.dir;
  }

  inputPath(hostPath: string): string {
    for (const [host, inside] of this.#p.inputMap) {
      if (hostPath === host) return inside;
      if (hostPath.startsWith(`${host}/`)) return inside + hostPath.slice(host.length);
    }
    return hostPath;
  }

  /** Moves a file the sandbox wrote (its host path: the same inside) to `<dir>/taken/N/` (noexec), root's. */
  async takeFile(path: string): Promise<string> {
    const home = join(this.#p.dir, "home");
    if (!isInside(path, home) || path === home)
      throw new VerifierError(`${path} is not in the home directory of sandbox ${this.id}`);
    return takeOutOfReach(
      home,
      relative(home, path),
      join(this.#p.dir, "taken"),
      String(++this.#taken),
      this.#p.user?.gid,
    );
  }

  #env(extra?: Record<string, string>): Record<string, string> {
    return {
      PATH: `${this.#p.binDir}:/usr/local/bin:/usr/bin:/bin`,
      HOME: join(this.#p.dir, "home"),
      LANG: "C.UTF-8",
      TZ: "UTC",
      PGHOST: join(this.#p.dir, "sock"),
      PGPORT: String(this.#p.port),
      PGUSER: "postgres",
      PGDATABASE: "postgres",
      PGPASSFILE: join(this.#p.dir, "home", "pgpass"),
      PGCONNECT_TIMEOUT: "10",
      ...extra,
    };
  }

  #program(program: string): string {
    const inBin = join(this.#p.binDir, program);
    return existsSync(inBin) ? inBin : program;
  }

  /** The command line that runs `program args` as a process of this sandbox, and its host env. */
  #argv(program: string, args: readonly string[], env: Record<string, string>) {
    const prog = this.#program(program);
    if (this.#p.confinement === "none") return { cmd: prog, args: [...args], env };
    const writable = [this.#p.dir, ...(isInside(this.dataDir, this.#p.dir) ? [] : [this.dataDir])];
    const { cmd, args: a } = confinedArgv(prog, args, {
      mode: "bwrap",
      readOnly: this.#p.readOnly,
      ...(this.#p.readOnlyFrom ? { readOnlyFrom: this.#p.readOnlyFrom } : {}),
      writable,
      user: this.#p.user,
      env,
      cwd: join(this.#p.dir, "home"),
      etcDir: join(this.#p.dir, "etc"),
      tmpDir: join(this.#p.dir, "tmp"),
      maxProcesses: this.#p.limits.maxProcesses,
      ...(this.#p.limits.maxProcessBytes ? { maxProcessBytes: this.#p.limits.maxProcessBytes } : {}),
    });
    // bwrap itself needs nothing of Attest's environment; the program gets only `env`
    const joined = this.#p.cgroup ? this.#p.cgroup.wrap(cmd, a) : { cmd, args: a };
    return { ...joined, env: { PATH: "/usr/bin:/bin" } };
  }

  exec(program: string, args: readonly string[], opts: SandboxExecOptions): Promise<RunResult> {
    const { cmd, args: a, env } = this.#argv(program, args, this.#env(opts.env));
    return runProcess(cmd, a, {
      ...opts,
      env,
      cwd: join(this.#p.dir, "home"),
      uid: this.#p.user?.uid,
      gid: this.#p.user?.gid,
    });
  }

  async start(opts: StartOptions): Promise<void> {
    const settings: Record<string, string> = {
      ...THROWAWAY_SETTINGS,
      ...opts.settings,
      port: String(this.#p.port),
      listen_addresses: "",
      unix_socket_directories: join(this.#p.dir, "sock"),
      unix_socket_permissions: "0700",
      // settings a backup's own postgresql.conf may carry that must not act on this host
      archive_mode: "off",
      archive_command: "",
      logging_collector: "off",
      // the sandbox's /dev/shm is read-only (confine.ts: a library written there would be code)
      ...(this.#p.confinement === "bwrap" ? { dynamic_shared_memory_type: "sysv" } : {}),
      ...(opts.settings?.archive_mode ? { archive_mode: opts.settings.archive_mode } : {}),
    };
    const args = ["-D", this.dataDir];
    for (const [k, v] of Object.entries(settings)) args.push("-c", `${k}=${v}`);
    this.#unlockSockets();
    const logFd = openSync(join(this.#p.dir, "server.log"), LOG_FLAGS, 0o644);
    const argv = this.#argv(join(this.#p.binDir, "postgres"), args, this.#env());
    const child = spawn(argv.cmd, argv.args, {
      detached: true,
      stdio: ["ignore", logFd, logFd],
      uid: this.#p.user?.uid,
      gid: this.#p.user?.gid,
      env: argv.env,
      cwd: join(this.#p.dir, "home"),
    });
    closeSync(logFd);
    this.#server = child;
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
      // the postmaster makes its socket before anything of the backup runs: lock the directory
      // then, before Attest's first connection
      if (!this.#lockSockets()) return undefined;
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
    const s = this.#server;
    return (
      s !== undefined &&
      s.exitCode === null &&
      s.signalCode === null &&
      postmasterPid(this.dataDir) !== undefined
    );
  }

  async stop(opts: { timeoutMs: number }): Promise<void> {
    const s = this.#server;
    if (!s?.pid || s.exitCode !== null || s.signalCode !== null) return;
    // inside its pid namespace the postmaster has a pid of its own: signal it by its host pid
    const postmaster = this.#p.confinement === "none" ? s.pid : findPostmaster(s.pid);
    await stopProcess(postmaster ?? s.pid, s, opts.timeoutMs);
  }

  /**
   * Ends every process of the sandbox at once, not asked (the whole pid namespace dies with
   * bwrap): on the drill's timeout or interrupt, a server stuck in the backup's code (a sleeping
   * event trigger, an endless function) must not hold the drill, and every pending query fails.
   */
  kill(): void {
    this.#killAll();
  }

  /** Removes the control group once its processes are gone (SIGKILL takes a moment). */
  async #removeCgroup(): Promise<void> {
    const cg = this.#p.cgroup;
    if (!cg) return;
    await retryUntil(
      async () => {
        cg.remove();
        return cg.dirs.every((d) => !existsSync(d)) ? true : undefined;
      },
      { timeoutMs: 5_000, what: "the sandbox's control group to empty", intervalMs: 50 },
    ).catch(() => {
      // left for the next sweep
    });
  }

  #killAll(): void {
    const s = this.#server;
    if (s?.pid && s.exitCode === null && s.signalCode === null) {
      try {
        process.kill(-s.pid, "SIGKILL");
      } catch {}
    }
  }

  /** Socket directory as the sandbox's own while its server starts (it must create the socket). */
  #unlockSockets(): void {
    handOverSocketDir(join(this.#p.dir, "sock"), this.#p.user);
  }

  /** Takes the socket directory back once the socket exists (socket-dir.ts); false until then. */
  #lockSockets(): boolean {
    try {
      return takeSocketDir(join(this.#p.dir, "sock"), this.#p.user);
    } catch (err) {
      // a sandbox that swapped its socket ends the start at once
      throw new StartError(describeError(err));
    }
  }

  async logTail(lines: number): Promise<string> {
    try {
      const text = readTail(join(this.#p.dir, "server.log"), 64 * 1024);
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
      // a provided data directory (a clone) outlives the sandbox: shut its server down cleanly
      if (!isInside(this.dataDir, this.#p.dir)) await this.stop({ timeoutMs: 15_000 });
      this.#killAll();
      if (this.#p.confinement === "none") await stopPostmaster(this.dataDir, 15_000);
      await this.#removeCgroup();
    } finally {
      await unmountUnder(this.#p.dir).catch(() => {});
      await rm(this.#p.dir, { recursive: true, force: true, maxRetries: 3 });
      this.#p.onDestroyed();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}

class StartError extends Error {}

/** Opens the server log for appending, never through a link. */
const LOG_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

/**
 * Reads at most `max` bytes of a file the sandbox may have written (its end, or its head), never
 * through a link: a hostile server must not make Attest read a host file into a verdict, nor
 * exhaust Attest's memory with a huge log.
 */
export function readTail(path: string, max: number, from: "tail" | "head" = "tail"): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return "";
    const len = Math.min(max, st.size);
    const buf = Buffer.alloc(len);
    const n = readSync(fd, buf, 0, len, from === "tail" ? st.size - len : 0);
    return buf.subarray(0, n).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/** The postmaster pid recorded in a data directory, if any. */
export function postmasterPid(dataDir: string): number | undefined {
  try {
    const first = readTail(join(dataDir, "postmaster.pid"), 4096, "head").split("\n")[0];
    const pid = Number(first);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Stops the postmaster of a data directory: fast shutdown, then immediate, then SIGKILL. */
export async function stopPostmaster(dataDir: string, timeoutMs: number): Promise<void> {
  const pid = postmasterPid(dataDir);
  // the pid file of a confined server holds its pid inside its namespace: never signal a
  // process that is not a postgres running on this data directory
  if (pid === undefined || !isPostmasterOf(pid, dataDir)) return;
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

/** Whether host process `pid` is a postgres whose command line names `dataDir`. */
function isPostmasterOf(pid: number, dataDir: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return /(^|\/)postgres$/.test(argv[0] ?? "") && argv.includes(dataDir);
  } catch {
    return false;
  }
}

/** Host pids of the children of a process. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (text) out.push(...text.split(" ").map(Number));
    }
  } catch {
    // the process is gone
  }
  return out;
}

/** The host pid of the postmaster under a bwrap process: the first `postgres` below it. */
export function findPostmaster(rootPid: number): number | undefined {
  const queue = [rootPid];
  while (queue.length) {
    const pid = queue.shift()!;
    for (const c of childrenOf(pid)) {
      const comm = readFileSafe(`/proc/${c}/comm`).trim();
      if (comm === "postgres") return c;
      queue.push(c);
    }
  }
  return undefined;
}

function readFileSafe(p: string): string {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
}

/** Fast shutdown of `pid`, then immediate, then SIGKILL of the whole group; waits for `child` to exit. */
async function stopProcess(pid: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  for (const [sig, share] of [
    ["SIGINT", 0.6],
    ["SIGQUIT", 0.3],
  ] as const) {
    if (exited()) return;
    try {
      process.kill(pid, sig);
    } catch {
      break;
    }
    try {
      await retryUntil(async () => (exited() ? true : undefined), {
        timeoutMs: Math.max(500, timeoutMs * share),
        what: `postmaster ${pid} to exit after ${sig}`,
        intervalMs: 50,
      });
      return;
    } catch {
      // escalate
    }
  }
  if (exited() || !child.pid) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {}
  await retryUntil(async () => (exited() ? true : undefined), {
    timeoutMs: 10_000,
    what: `sandbox process group ${child.pid} to exit after SIGKILL`,
    intervalMs: 50,
  });
}
