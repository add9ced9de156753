/** A sandbox that is a PostgreSQL cluster inside a container; every tool runs inside it via exec. */
import { existsSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import type Docker from "dockerode";
import pg from "pg";
import { describeError, VerifierError } from "../../util/errors.js";
import { isRoot } from "../../util/os-user.js";
import { lastLines, type RunResult } from "../../util/process.js";
import { retryUntil } from "../../util/retry.js";
import { readTail, THROWAWAY_SETTINGS } from "../local/local-sandbox.js";
import type { Sandbox, SandboxConnection, SandboxExecOptions, StartOptions } from "../runtime.js";
import { handOverSocketDir, takeSocketDir } from "../socket-dir.js";
import { takeOutOfReach } from "../taken-file.js";
import type { NetworkMode } from "./docker-container.js";
import { type ExecOptions, runExec } from "./docker-exec.js";
import { type HostDir, removeHostDir, type SandboxIds } from "./docker-host-dir.js";

/** Where things live inside the container. */
export const LAYOUT = {
  /** Bound from the host directory's `sandbox`. */
  base: "/sandbox",
  /** Where a tmpfs goes when the configuration asks for one. */
  dataMount: "/sandbox/data",
  data: "/sandbox/data/pgdata",
  /** The only way in: the host connects to the server's socket here. */
  sockets: "/sandbox/sock",
  pids: "/sandbox/run",
  pgpass: "/sandbox/pgpass",
  pwfile: "/sandbox/pwfile",
  log: "/sandbox/server.log",
  inputs: "/inputs",
  /** Private read-only copies of inputs the sandbox user could not read. */
  copies: "/copies",
  /**
   * A cluster initialised when the image was built (docker/build-sandbox-image.sh): copied into
   * `data` in a fraction of initdb's time; images without one get initdb.
   */
  template: "/usr/lib/attest/pgdata-template",
} as const;

/** The port the server listens on: its socket's name (.s.PGSQL.5432); no TCP listener. */
const PORT = 5432;

/** The unprivileged account every program in the sandbox runs as. */
export const SANDBOX_USER = "postgres";

/** A host path bind-mounted read-only into the container. */
export interface MountedInput {
  hostPath: string;
  containerPath: string;
  /** What the engine binds (a read-only noexec bind of `hostPath` under the host directory), when not `hostPath`. */
  bindSource?: string;
}

/** Everything a docker sandbox is made of. */
export interface DockerSandboxParts {
  id: string;
  docker: Docker;
  containerId: string;
  image: string;
  pgMajor: number;
  network: NetworkMode;
  password: string;
  /** Inputs as the sandbox sees them (a private copy's path when one was made). */
  inputs: readonly MountedInput[];
  /** The host side of /sandbox and of the copies. */
  host: HostDir;
  /** Whether the data directory is a tmpfs (then the host cannot see into it). */
  tmpfs: boolean;
  /** The memory limit, for messages. */
  memory: string;
  /** Called once destroy() has removed the container. */
  onDestroyed: () => void;
}

/** How long each phase of provisioning took (ms), for timing reports. */
export interface StartupTimings {
  containerMs: number;
  setupMs: number;
  initdbMs: number;
  serverMs: number;
  /** Container create → the server accepts connections. */
  totalMs: number;
}

/** A docker sandbox; construct through DockerRuntime.provision. */
export class DockerSandbox implements Sandbox {
  readonly runtime = "docker";
  readonly id: string;
  readonly pgMajor: number;
  readonly connection: SandboxConnection;
  readonly dataDir = LAYOUT.data;
  /** Filled in by the runtime once the sandbox is ready. */
  startup: StartupTimings | undefined;
  /** The host identity of the container's processes, once known (for the socket directory). */
  ids: SandboxIds | undefined;
  /** What the drill record should state about this sandbox (opt-outs of containment, copies made). */
  readonly notes: string[] = [];
  /** How its processes are confined, in words, for the drill record. */
  confinement = "";
  readonly #p: DockerSandboxParts;
  readonly #container: Docker.Container;
  #postmaster: Docker.Exec | undefined;
  #execCount = 0;
  #oomKillsSeen = 0;
  #destroyed = false;
  #taken = 0;

  constructor(parts: DockerSandboxParts) {
    this.#p = parts;
    this.id = parts.id;
    this.pgMajor = parts.pgMajor;
    this.#container = parts.docker.getContainer(parts.containerId);
    // a Unix socket in the bind-mounted directory: the server needs no network at all
    this.connection = { host: parts.host.sockets, port: PORT, user: "postgres", password: parts.password };
  }

  /** The container's id. */
  get containerId(): string {
    return this.#p.containerId;
  }

  /** The sandbox's directory on the host (socket, log, data unless on tmpfs, private copies). */
  get hostDir(): string {
    return this.#p.host.dir;
  }

  /** The image the container runs. */
  get image(): string {
    return this.#p.image;
  }

  inputPath(hostPath: string): string {
    const wanted = resolve(hostPath);
    for (const input of this.#p.inputs) {
      if (wanted === input.hostPath) return input.containerPath;
      if (wanted.startsWith(input.hostPath + sep))
        return input.containerPath + wanted.slice(input.hostPath.length);
    }
    // what takeFile moved out of the sandbox's reach: read-only at /copies
    if (wanted.startsWith(this.#p.host.copies + sep))
      return LAYOUT.copies + wanted.slice(this.#p.host.copies.length);
    throw new Error(`${hostPath} is not an input of sandbox ${this.id}`);
  }

  /** Moves a file the sandbox wrote under /sandbox to the host's copies (read-only at /copies). */
  async takeFile(path: string): Promise<string> {
    const rel = path.slice(LAYOUT.base.length);
    const own = [LAYOUT.dataMount, LAYOUT.sockets, LAYOUT.pids].some(
      (d) => path === d || path.startsWith(`${d}/`),
    );
    if (!path.startsWith(`${LAYOUT.base}/`) || rel.split("/").includes("..") || own)
      throw new VerifierError(`${path} is not a file sandbox ${this.id} may hand over`);
    if (!isRoot()) {
      // unprivileged, Attest is not the container's user: it must be let in to move the file
      await this.runScript(
        'chmod -R a+rwX -- "$1" && chmod a+rwx -- "$(dirname -- "$1")"',
        [path],
        60_000,
      ).then((r) => {
        if (r.code !== 0)
          throw new VerifierError(`cannot open ${path} to Attest: ${lastLines(r.stderrTail, 2)}`);
      });
    }
    return takeOutOfReach(
      this.#p.host.sandbox,
      rel.slice(1),
      this.#p.host.copies,
      `taken-${++this.#taken}`,
      this.ids?.gid,
    );
  }

  #env(extra?: Record<string, string>): string[] {
    const env: Record<string, string> = {
      // the image's own PATH may lack the server binaries (official images add them; others may not)
      PATH: `/usr/lib/postgresql/${this.pgMajor}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      HOME: LAYOUT.base,
      LANG: "C.UTF-8",
      PGHOST: LAYOUT.sockets,
      PGPORT: String(PORT),
      PGUSER: "postgres",
      PGDATABASE: "postgres",
      PGPASSFILE: LAYOUT.pgpass,
      PGCONNECT_TIMEOUT: "10",
      ...extra,
    };
    return Object.entries(env).map(([k, v]) => `${k}=${v}`);
  }

  exec(program: string, args: readonly string[], opts: SandboxExecOptions): Promise<RunResult> {
    // a wrapper records the in-container pid (a session leader under runc), so a timeout or
    // abort can signal the whole process group, pg_restore -j workers included
    const pidFile = `${LAYOUT.pids}/exec-${++this.#execCount}.pid`;
    return runExec(
      this.#p.docker,
      this.#container,
      {
        name: program,
        cmd: ["sh", "-c", 'echo $$ >"$0" && exec "$@"', pidFile, program, ...args],
        user: SANDBOX_USER,
        env: this.#env(opts.env),
        workingDir: LAYOUT.base,
      },
      opts,
      {
        kill: (sig) => this.#signal(pidFile, sig, true),
        explain: (r) => this.#explain(program, r),
        stop: () => this.#stopAll(),
      },
    );
  }

  /** Runs a short helper command (no timeout handling beyond its own, no wrapper). */
  async #helper(cmd: string[], opts: Partial<ExecOptions> = {}): Promise<RunResult> {
    return runExec(
      this.#p.docker,
      this.#container,
      { name: cmd[0] ?? "sh", cmd, user: SANDBOX_USER, env: this.#env(), workingDir: "/" },
      { timeoutMs: 30_000, allowFailure: true, ...opts },
      // a helper that hangs is ended by its caller's own escalation, never the sandbox for it
      { kill: async () => {}, explain: async () => undefined, stop: async () => {} },
    );
  }

  /** Kills the container, and so every program in it: a command outlived its KILL (see ExecControl.stop). */
  async #stopAll(): Promise<void> {
    await this.#container.kill({ signal: "SIGKILL" }).catch(() => {});
  }

  /** Runs a script as the sandbox user; returns its result without judging it (killed or gone: a VerifierError). */
  runScript(
    script: string,
    args: readonly string[] = [],
    timeoutMs = 60_000,
    stdin?: string,
    name = "sh",
    signal?: AbortSignal,
  ): Promise<RunResult> {
    return runExec(
      this.#p.docker,
      this.#container,
      {
        name,
        cmd: ["sh", "-c", script, "sh", ...args],
        user: SANDBOX_USER,
        env: this.#env(),
        workingDir: "/",
      },
      {
        timeoutMs,
        allowFailure: true,
        ...(stdin !== undefined ? { stdin } : {}),
        ...(signal ? { signal } : {}),
      },
      { kill: async () => {}, explain: (r) => this.#explain(name, r), stop: () => this.#stopAll() },
    );
  }

  async #signal(pidFile: string, sig: "TERM" | "KILL" | "INT" | "QUIT", group: boolean): Promise<void> {
    const target = group ? '-- "-$p"' : '"$p"';
    await this.#helper(
      ["sh", "-c", `p=$(cat "$0") || exit 0; kill -s "$1" ${target} 2>/dev/null; exit 0`, pidFile, sig],
      {
        timeoutMs: 10_000,
      },
    );
  }

  /** Why a program failed, when the sandbox rather than the program is to blame. */
  async #explain(program: string, result: RunResult): Promise<Error | undefined> {
    let state: Docker.ContainerInspectInfo["State"];
    try {
      state = (await this.#container.inspect()).State;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) {
        return new VerifierError(`sandbox container ${this.id} disappeared while ${program} ran`);
      }
      return undefined;
    }
    if (!state.Running) {
      return new VerifierError(
        `sandbox container was killed (OOMKilled=${state.OOMKilled}, exit code ${state.ExitCode}) while ${program} ran`,
      );
    }
    const kills = await this.#oomKills();
    if (kills > this.#oomKillsSeen) {
      this.#oomKillsSeen = kills;
      const limit = `memory limit ${this.#p.memory}`;
      return new VerifierError(
        `sandbox ran out of memory: the kernel OOM killer ended a process while ${program} ran (${limit}; exit code ${result.code})`,
      );
    }
    return undefined;
  }

  /** OOM kills in the container's memory cgroup (v2: memory.events, v1: memory.oom_control). */
  async #oomKills(): Promise<number> {
    const r = await this.#helper(
      [
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null; exit 0",
      ],
      { timeoutMs: 10_000 },
    ).catch(() => undefined);
    return Number(/^oom_kill (\d+)/m.exec(r?.stdout ?? "")?.[1] ?? 0);
  }

  async start(opts: StartOptions): Promise<void> {
    const settings: Record<string, string> = {
      ...THROWAWAY_SETTINGS,
      ...opts.settings,
      port: String(PORT),
      // the socket only, whatever the network mode: nothing reaches the server but through it
      listen_addresses: "",
      unix_socket_directories: LAYOUT.sockets,
      // settings a backup's own postgresql.conf may carry that must not act here
      archive_mode: "off",
      archive_command: "",
      logging_collector: "off",
      ...(opts.settings?.archive_mode ? { archive_mode: opts.settings.archive_mode } : {}),
    };
    const args = ["-D", this.dataDir];
    for (const [k, v] of Object.entries(settings)) args.push("-c", `${k}=${v}`);
    const pidFile = `${LAYOUT.pids}/postmaster.exec.pid`;
    handOverSocketDir(this.#p.host.sockets, this.ids, { openToAll: true });
    // Detached exec whose process *is* the postmaster (the shell execs it): the engine keeps
    // its state, so isRunning() is an exec inspect and stop()/start() can repeat freely.
    const exec = await this.#container.exec({
      Cmd: [
        "sh",
        "-c",
        `echo $$ >"$0" && exec "$@" >>${LAYOUT.log} 2>&1 </dev/null`,
        pidFile,
        "postgres",
        ...args,
      ],
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      User: SANDBOX_USER,
      Env: this.#env(),
      WorkingDir: LAYOUT.base,
    });
    const response = (await exec.start({ Detach: true })) as Readable | undefined;
    // dockerode hands back the (empty) response unread; reading it frees the engine connection,
    // which otherwise keeps this process alive after the run
    if (response) await finished(response.resume()).catch(() => {});
    this.#postmaster = exec;
    const check = async (): Promise<true | undefined> => {
      const info = await exec.inspect();
      if (!info.Running) {
        throw new StartError(
          `postgres exited with code ${info.ExitCode}: ${lastLines(await this.logTail(40), 4)}`,
        );
      }
      // the postmaster makes its socket before anything of the backup runs: take the directory
      // back then, before Attest's first connection
      if (!takeSocketDir(this.#p.host.sockets, this.ids)) return undefined;
      if (opts.wait === "running") {
        if (!this.#p.tmpfs)
          return existsSync(this.#hostPath(this.dataDir, "postmaster.pid")) ? true : undefined;
        const r = await this.runScript(`test -f ${this.dataDir}/postmaster.pid`, [], 10_000);
        return r.code === 0 ? true : undefined;
      }
      const c = new pg.Client({ ...this.connection, database: "postgres", connectionTimeoutMillis: 5000 });
      try {
        await c.connect();
        await c.query("select 1");
        return true;
      } finally {
        await c.end().catch(() => {});
      }
    };
    // retryUntil retries on errors; a server that exited is final, so it stops the wait
    const stop = new AbortController();
    let fatal: Error | undefined;
    try {
      await retryUntil(
        async () => {
          try {
            return await check();
          } catch (err) {
            if (err instanceof StartError) {
              fatal = err;
              stop.abort(err);
            }
            throw err;
          }
        },
        {
          timeoutMs: opts.timeoutMs,
          what: "the sandbox server to accept connections",
          signal: opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal,
          // a server starts in tens of milliseconds: a backing-off poll would cost more than it
          intervalMs: 20,
          maxIntervalMs: 100,
        },
      );
    } catch (err) {
      if (fatal) throw fatal;
      const dead = await this.#explain("postgres", {
        code: null,
        signal: null,
        stdout: "",
        stderrTail: "",
        timedOut: false,
      });
      throw dead ?? err;
    }
  }

  async isRunning(): Promise<boolean> {
    if (!this.#postmaster || this.#destroyed) return false;
    try {
      return (await this.#postmaster.inspect()).Running;
    } catch {
      return false;
    }
  }

  /**
   * Fast shutdown, then immediate, then SIGKILL — the same ladder as the local runtime — and then
   * every other process of the container ends too (see #killStrays).
   */
  async stop(opts: { timeoutMs: number }): Promise<void> {
    const pidFile = `${LAYOUT.pids}/postmaster.exec.pid`;
    for (const [sig, share] of [
      ["INT", 0.6],
      ["QUIT", 0.3],
      ["KILL", 0.1],
    ] as const) {
      if (!(await this.isRunning())) break;
      await this.#signal(pidFile, sig, false);
      try {
        await retryUntil(async () => ((await this.isRunning()) ? undefined : true), {
          timeoutMs: Math.max(500, opts.timeoutMs * share),
          what: `the sandbox postmaster to exit after SIG${sig}`,
          intervalMs: 50,
          maxIntervalMs: 200,
        });
        break;
      } catch (err) {
        if (sig === "KILL") throw new Error(`could not stop the sandbox server: ${describeError(err)}`);
      }
    }
    await this.#killStrays();
  }

  /**
   * Kills every process of the container but its init and the process that keeps it alive (the
   * oldest after init). All programs of a container share one pid namespace, so what the
   * backup's code started (`COPY … TO PROGRAM 'daemon &'`) outlives the server; left running, it
   * could rewrite pages while pg_checksums reads them offline, or wait for the next start.
   */
  async #killStrays(): Promise<void> {
    const script = [
      // field 22 of /proc/PID/stat (start time) is the 20th after the command's closing ") "
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansions
      'keep=$(for s in /proc/[0-9]*/stat; do p=${s#/proc/}; p=${p%/stat}; [ "$p" = 1 ] && continue; r=$(cat "$s" 2>/dev/null) || continue; r=${r##*) }; set -- $r; echo "${20} $p"; done | sort -n | head -n 1 | cut -d " " -f 2)',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansions
      'for s in /proc/[0-9]*; do p=${s#/proc/}; case "$p" in 1|"$keep"|"$$") ;; *) kill -KILL "$p" 2>/dev/null;; esac; done',
      "exit 0",
    ].join("\n");
    await this.#helper(["sh", "-c", script], { timeoutMs: 30_000 });
  }

  /** The host path of a path under /sandbox (not under a tmpfs data directory). */
  #hostPath(inside: string, ...more: string[]): string {
    return join(this.#p.host.sandbox, inside.slice(LAYOUT.base.length), ...more);
  }

  async logTail(lines: number): Promise<string> {
    if (this.#destroyed) return "";
    // the log lies in the bind-mounted /sandbox: read its end on the host, no exec needed; the
    // container owns /sandbox, so readTail never follows a link it put in the log's place
    let text: string | undefined;
    try {
      text = readTail(this.#hostPath(LAYOUT.log), 256 * 1024);
    } catch {
      text = undefined;
    }
    if (text !== undefined)
      return text
        .split("\n")
        .slice(-lines - 1)
        .join("\n");
    const r = await this.#helper(["tail", "-n", String(lines), LAYOUT.log], { timeoutMs: 10_000 }).catch(
      () => undefined,
    );
    return r?.code === 0 ? r.stdout : "";
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    try {
      if (!isRoot()) {
        // the files the sandbox user made are its own: without root only it can delete them
        await this.runScript(`rm -rf ${LAYOUT.base}/* 2>/dev/null; exit 0`, [], 60_000).catch(() => {});
      }
      // force: SIGKILL, the container is throwaway; its anonymous volumes go with it
      await removeContainer(this.#p.docker, this.containerId).catch((err: unknown) => {
        throw new Error(`could not remove sandbox container ${this.id}: ${describeError(err)}`, {
          cause: err,
        });
      });
      await removeHostDir(this.#p.host.dir);
    } finally {
      this.#p.onDestroyed();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}

/** Force-removes a container and its anonymous volumes; a container already gone is fine. */
export async function removeContainer(docker: Docker, id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true, v: true });
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    // 404: gone; 409: removal already in progress
    if (status !== 404 && status !== 409) throw err;
  }
}

class StartError extends Error {}
