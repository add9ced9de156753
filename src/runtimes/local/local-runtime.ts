/**
 * The `local` runtime: initdb/postgres from the host's PostgreSQL binaries in a private directory,
 * every process confined by bubblewrap (confine.ts) as a dedicated unprivileged account.
 */
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir, totalmem } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { describeError, VerifierError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { isRoot, lookupUser, type OsUser, processAlive, processStartTime } from "../../util/os-user.js";
import { runProcess } from "../../util/process.js";
import { bindReadOnlyNoexec, mountNoexec, NOEXEC_SUBDIRS, unmountUnder } from "../noexec-mounts.js";
import { chooseMajor, type Runtime, type Sandbox, type SandboxSpec, type SweepReport } from "../runtime.js";
import { copyTemplate, INITDB_ARGS, keepTemplate, templateDir } from "./cluster-template.js";
import { assertConfinable, type ConfinementMode, etcFiles, installRoot } from "./confine.js";
import { discoverInstalls, type PgInstall } from "./local-binaries.js";
import { LocalSandbox, stopPostmaster } from "./local-sandbox.js";
import { createSandboxCgroup, sweepSandboxCgroups } from "./sandbox-cgroup.js";

/** Options of the local runtime. */
export interface LocalRuntimeOptions {
  binDir?: string;
  /** Account (name or numeric uid) sandbox processes run as when Attest runs as root. */
  user: string;
  workDir?: string;
  logger: Logger;
  /** `bwrap` (default) or `none`. */
  confinement?: ConfinementMode;
  /** Most processes one sandbox may have. */
  maxProcesses?: number;
  /** Memory of one whole sandbox, bytes (default: 4 GiB or half the host's memory, the smaller). */
  memoryBytes?: number;
}

/** The port number in the socket's name; the server listens on no TCP port. */
const SOCKET_PORT = 5432;
/** The longest path a Unix socket can have on Linux (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

/** The owner record of a sandbox directory, or undefined when it has none (or is gone). */
function readOwner(dir: string): OwnerRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, OWNER_FILE), "utf8")) as OwnerRecord;
  } catch {
    return undefined;
  }
}

/** What a sandbox directory records about its owner, so a later run can sweep it. */
interface OwnerRecord {
  pid: number;
  pidStart?: string;
  run: string;
  source: string;
  backup: string;
  started: string;
  /** A provided data directory (a mounted clone): a sweep stops a server left running there. */
  dataDir?: string;
}

const OWNER_FILE = "owner.json";

/** The embedded default runtime. */
export class LocalRuntime implements Runtime {
  readonly name = "local";
  readonly #opts: LocalRuntimeOptions;
  readonly #base: string;
  readonly #live = new Set<LocalSandbox>();
  #installs: Promise<PgInstall[]> | undefined;
  #counter = 0;

  constructor(opts: LocalRuntimeOptions) {
    this.#opts = opts;
    this.#base = join(opts.workDir ?? tmpdir(), "attest-sandboxes");
  }

  /** Where sandbox directories are created. */
  get baseDir(): string {
    return this.#base;
  }

  #discover(): Promise<PgInstall[]> {
    this.#installs ??= discoverInstalls(this.#opts.binDir);
    return this.#installs;
  }

  async availableMajors(): Promise<number[]> {
    return (await this.#discover()).map((i) => i.major);
  }

  #user(): OsUser | undefined {
    if (!isRoot()) return undefined;
    const name = this.#opts.user;
    const u = /^\d+$/.test(name)
      ? { name: "attest-sandbox", uid: Number(name), gid: Number(name), home: "/nonexistent" }
      : lookupUser(name);
    if (!u) {
      throw new VerifierError(
        `running as root, and the sandbox account "${name}" does not exist: create it (useradd --system --user-group --no-create-home --shell /usr/sbin/nologin ${name}) or set sandbox.local.user`,
      );
    }
    if (u.uid === 0)
      throw new VerifierError(`sandbox.local.user "${name}" is root: sandboxes never run as root`);
    return u;
  }

  /** Confinement mode in force. */
  get confinement(): ConfinementMode {
    return this.#opts.confinement ?? "bwrap";
  }

  async provision(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox> {
    const installs = await this.#discover();
    if (installs.length === 0) {
      throw new VerifierError(
        "no PostgreSQL server binaries found (looked in sandbox.local.bin_dir, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, pg_config --bindir)",
      );
    }
    const choice = chooseMajor(
      spec.pgMajor,
      installs.map((i) => i.major),
      spec.allowNewer,
    );
    if ("error" in choice) throw new VerifierError(choice.error);
    const install = installs.find((i) => i.major === choice.major)!;
    const user = this.#user();
    this.#ensureBase();

    const id = `attest-${spec.labels.run}-${++this.#counter}`;
    const dir = join(this.#base, id);
    // the kernel caps a Unix socket's path (sun_path): a long work directory would only show
    // as the sandbox server refusing to start, so say so before anything is made
    const socket = Buffer.byteLength(join(dir, "sock", `.s.PGSQL.${SOCKET_PORT}`));
    if (socket > MAX_SOCKET_PATH) {
      const workDir = this.#opts.workDir ?? tmpdir();
      const room = MAX_SOCKET_PATH - (socket - Buffer.byteLength(workDir));
      throw new VerifierError(
        `the sandbox's socket path would be ${socket} bytes, over the ${MAX_SOCKET_PATH} a Unix socket allows: set sandbox.local.work_dir (or TMPDIR) to a directory of at most ${room} bytes (${workDir} has ${Buffer.byteLength(workDir)})`,
      );
    }
    mkdirSync(dir, { mode: 0o700 });
    const owner: OwnerRecord = {
      pid: process.pid,
      pidStart: processStartTime(process.pid),
      ...spec.labels,
      started: new Date().toISOString(),
      ...(spec.dataDir ? { dataDir: spec.dataDir } : {}),
    };
    writeFileSync(join(dir, OWNER_FILE), JSON.stringify(owner));
    // The top directory, etc/, inputs/ and server.log stay Attest's: the sandbox account may write
    // only data/, home/ and (while its server starts) sock/, so it can never swap a path Attest
    // itself opens or connects to for a link to something of the host.
    chmodSync(dir, 0o711);
    for (const sub of ["sock", "data", "home", "tmp"]) mkdirSync(join(dir, sub), { mode: 0o700 });
    for (const sub of ["etc", "inputs", "taken"]) mkdirSync(join(dir, sub), { mode: 0o711 });
    const password = randomBytes(18).toString("base64url");
    // in home/ (noexec), not the top directory: a file the sandbox account owns there is one it
    // could overwrite with a library and map as code
    writeFileSync(join(dir, "home", "pgpass"), `*:*:*:postgres:${password}\n`, { mode: 0o600 });
    writeFileSync(join(dir, "home", "pwfile"), `${password}\n`, { mode: 0o600 });
    writeFileSync(join(dir, "server.log"), "", { mode: 0o644 });
    // what the confined processes see as /etc: a name for their uid, nothing of the host's
    const etc = etcFiles(user);
    writeFileSync(join(dir, "etc", "passwd"), etc.passwd, { mode: 0o644 });
    writeFileSync(join(dir, "etc", "group"), etc.group, { mode: 0o644 });
    if (user) {
      for (const p of ["sock", "data", "home", "tmp", "home/pgpass", "home/pwfile"])
        chownSync(join(dir, p), user.uid, user.gid);
    }

    if (user && !(await searchableBy(dir, user))) {
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      throw new VerifierError(
        `the sandbox directory ${dir} cannot be reached by the sandbox account ${user.name}: every folder above it must be searchable by others (chmod o+x), or set sandbox.local.work_dir to one that is`,
      );
    }
    const notes: string[] = [];
    let sandbox: LocalSandbox | undefined;
    const killOnAbort = () => sandbox?.kill();
    try {
      // the backup's files and what the sandbox writes are never code (a library it ships, S3-11)
      if (!(await mountNoexec(NOEXEC_SUBDIRS.map((s) => join(dir, s)))))
        notes.push(
          "Attest does not run as root: the sandbox directory could not be made non-executable (a library shipped in the backup is not blocked from loading)",
        );
      if (this.confinement === "bwrap") await assertConfinable(user, join(dir, "etc"));
      else notes.push("sandbox.confinement is none: the sandbox's processes ran unconfined on this host");
      const { readOnly, inputMap } = await this.#inputs(spec, dir, user, notes, signal);
      // each input the sandbox reads in place is bound through a read-only noexec bind of it
      // (bwrap's bind keeps those flags): a library shipped beside the backup is no code either
      const readOnlyFrom = new Map<string, string>();
      for (const [i, host] of readOnly.entries()) {
        const via = join(dir, "ro", String(i + 1));
        if (await bindReadOnlyNoexec(host, via)) readOnlyFrom.set(host, via);
      }
      const root = installRoot(install.binDir);
      const memoryBytes = this.#opts.memoryBytes ?? Math.min(4 * 1024 ** 3, Math.floor(totalmem() / 2));
      const maxProcesses = this.#opts.maxProcesses ?? 1024;
      const cgroup =
        this.confinement === "bwrap"
          ? createSandboxCgroup(id, user, { memoryBytes, maxProcesses })
          : undefined;
      if (this.confinement === "bwrap" && !cgroup)
        notes.push(
          `no control group could be made here: memory is limited per process (${Math.round(memoryBytes / 1048576)} MiB), not for the sandbox as a whole`,
        );
      sandbox = new LocalSandbox({
        id,
        dir,
        binDir: install.binDir,
        pgMajor: install.major,
        port: SOCKET_PORT,
        password,
        user,
        dataDir: spec.dataDir ?? join(dir, "data"),
        confinement: this.confinement,
        readOnly: root ? [...readOnly, root] : readOnly,
        readOnlyFrom,
        inputMap,
        // with a cgroup the whole sandbox is bounded; without, each process is
        limits: { maxProcesses, ...(cgroup ? {} : { maxProcessBytes: memoryBytes }) },
        ...(cgroup ? { cgroup } : {}),
        notes,
        onDestroyed: () => {
          signal?.removeEventListener("abort", killOnAbort);
          this.#live.delete(sandbox!);
        },
      });
    } catch (err) {
      await unmountUnder(dir).catch(() => {});
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      throw err;
    }
    this.#live.add(sandbox);
    signal?.addEventListener("abort", killOnAbort, { once: true });
    try {
      if (spec.dataDir) await adoptDataDir(spec.dataDir, user, signal);
      if (spec.mode === "init" && !spec.dataDir) {
        // a copy of the template of these binaries, else initdb (kept as the template). The
        // template's password is not this sandbox's: the server listens on its socket only,
        // where local connections are trusted, so none is ever asked
        const template = templateDir(dirname(this.#base), install.binDir, user);
        if (!(await copyTemplate(template, sandbox.dataDir, signal))) {
          await sandbox.exec(
            "initdb",
            ["-D", sandbox.dataDir, `--pwfile=${join(dir, "home", "pwfile")}`, ...INITDB_ARGS],
            {
              timeoutMs: 120_000,
              signal,
            },
          );
          await keepTemplate(sandbox.dataDir, template, signal).catch((err: unknown) =>
            this.#opts.logger.debug("no template cluster kept", { error: describeError(err) }),
          );
        }
        await sandbox.start({
          timeoutMs: 60_000,
          signal,
          settings: { wal_level: "minimal", max_wal_senders: "0" },
        });
      }
      return sandbox;
    } catch (err) {
      await sandbox.destroy().catch(() => {});
      throw err;
    }
  }

  /**
   * What the sandbox may read of each input: the original, read-only, when the sandbox account can
   * read all of it; otherwise a private copy in the sandbox directory (made by Attest, which could
   * read it), so a backup is drillable whatever its owner and mode and is never chmod-ed.
   */
  async #inputs(
    spec: SandboxSpec,
    dir: string,
    user: OsUser | undefined,
    notes: string[],
    signal?: AbortSignal,
  ): Promise<{ readOnly: string[]; inputMap: Map<string, string> }> {
    const readOnly: string[] = [];
    const inputMap = new Map<string, string>();
    let n = 0;
    for (const input of spec.inputs) {
      const host = resolve(input.hostPath);
      if (!existsSync(host)) throw new VerifierError(`input ${host} does not exist`);
      if (!user || (await readableBy(host, user, signal))) {
        readOnly.push(host);
        continue;
      }
      const copy = join(dir, "inputs", `${++n}-${basename(host)}`);
      // -a keeps links as links: a link in the backup never reaches out of the copy
      await runProcess("cp", ["-a", "--reflink=auto", "--", host, copy], {
        timeoutMs: 6 * 3_600_000,
        ...(signal ? { signal } : {}),
      });
      await runProcess("chown", ["-R", "-P", "-h", `${user.uid}:${user.gid}`, "--", copy], {
        timeoutMs: 3_600_000,
        ...(signal ? { signal } : {}),
      });
      inputMap.set(host, copy);
      notes.push(
        `${host} is not readable by the sandbox account ${user.name}; the sandbox read a private copy (the original was not changed)`,
      );
    }
    return { readOnly, inputMap };
  }

  #ensureBase(): void {
    // 0711: the sandbox user may traverse into its own directory, nobody may list the others
    mkdirSync(this.#base, { recursive: true, mode: 0o711 });
    chmodSync(this.#base, 0o711);
  }

  /** Destroys every sandbox this process still has (signal handling). */
  async destroyAll(): Promise<void> {
    await Promise.allSettled([...this.#live].map((s) => s.destroy()));
  }

  async sweep(): Promise<SweepReport> {
    const report: SweepReport = { removed: [], kept: [] };
    if (!existsSync(this.#base)) return report;
    for (const name of readdirSync(this.#base)) {
      if (!name.startsWith("attest-")) continue;
      const dir = join(this.#base, name);
      // a staging directory beside a sandbox (barman recover's) belongs to that sandbox's owner:
      // it lives as long as the sandbox does, however long the recovery takes
      const staging = /^(.+)-barman(?:-tablespaces)?$/.exec(name);
      const owner = readOwner(staging ? join(this.#base, staging[1]!) : dir);
      const alive = owner
        ? processAlive(owner.pid, owner.pidStart)
        : !staging && Date.now() - statSync(dir).mtimeMs < 3_600_000;
      if (alive) {
        report.kept.push(name);
        continue;
      }
      try {
        await stopPostmaster(owner?.dataDir ?? join(dir, "data"), 15_000);
        // a leftover's noexec mounts go first: rm would otherwise stop at a busy mount point
        await unmountUnder(dir);
        await rm(dir, { recursive: true, force: true, maxRetries: 3 });
        report.removed.push(owner ? `${name} (run ${owner.run}, ${owner.source}/${owner.backup})` : name);
        this.#opts.logger.info("removed leftover sandbox", { sandbox: name, run: owner?.run });
      } catch (err) {
        this.#opts.logger.warn("could not remove leftover sandbox", {
          sandbox: name,
          error: describeError(err),
        });
        report.kept.push(name);
      }
    }
    // control groups of Attest processes that are gone (their sandboxes' processes died with them)
    for (const g of sweepSandboxCgroups()) {
      report.removed.push(g);
      this.#opts.logger.info("removed leftover sandbox control group", { cgroup: g });
    }
    return report;
  }
}

/**
 * Hands a provided data directory to the sandbox user: it is a throwaway copy (a cloned volume),
 * never production. `chown -R -P` does not follow symbolic links (pg_wal, tablespaces) out of it.
 */
async function adoptDataDir(dataDir: string, user: OsUser | undefined, signal?: AbortSignal): Promise<void> {
  if (user) {
    await runProcess("chown", ["-R", "-P", "-h", `${user.uid}:${user.gid}`, "--", dataDir], {
      timeoutMs: 3_600_000,
      ...(signal ? { signal } : {}),
    });
  }
  chmodSync(dataDir, 0o700);
}

/** Whether `user` can reach into directory `dir` (every folder above it searchable). */
async function searchableBy(dir: string, user: OsUser): Promise<boolean> {
  const r = await runProcess("test", ["-x", dir], {
    timeoutMs: 10_000,
    allowFailure: true,
    uid: user.uid,
    gid: user.gid,
    env: { PATH: "/usr/bin:/bin" },
    cwd: "/",
  });
  return r.code === 0;
}

/** Whether `user` can read all of `path` (every file, every directory listed and entered). */
async function readableBy(path: string, user: OsUser, signal?: AbortSignal): Promise<boolean> {
  // find walks without following links and prints the first thing the account cannot read
  const r = await runProcess(
    "find",
    [path, "(", "!", "-readable", "-o", "-type", "d", "!", "-executable", ")", "-print", "-quit"],
    {
      timeoutMs: 600_000,
      allowFailure: true,
      uid: user.uid,
      gid: user.gid,
      env: { PATH: "/usr/bin:/bin", LANG: "C" },
      cwd: "/",
      ...(signal ? { signal } : {}),
    },
  );
  return r.code === 0 && r.stdout.trim() === "";
}

/** Runs `which`-style lookup of a program on PATH (for messages). */
export async function hasProgram(name: string): Promise<boolean> {
  const r = await runProcess("sh", ["-c", `command -v ${name}`], { timeoutMs: 5000, allowFailure: true });
  return r.code === 0;
}
