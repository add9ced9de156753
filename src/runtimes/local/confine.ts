/**
 * Confinement of every process that touches a backup: bubblewrap gives it its own user, mount,
 * pid, network, ipc and uts namespaces, a view of the host that holds only /usr (read-only), its
 * own directories (read-write) and the backup (read-only), a clean environment, no capabilities,
 * no_new_privs, and death with its parent. Host paths keep their names inside, so a path means
 * the same thing to Attest and to the confined program.
 */
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { VerifierError } from "../../util/errors.js";
import { isRoot, type OsUser, processAlive } from "../../util/os-user.js";
import { type RunOptions, type RunResult, runProcess } from "../../util/process.js";

/** How sandbox processes are confined: `bwrap` (the default) or `none` (an explicit, recorded opt-out). */
export const CONFINEMENT_MODES = ["bwrap", "none"] as const;
/** One of CONFINEMENT_MODES. */
export type ConfinementMode = (typeof CONFINEMENT_MODES)[number];

/** What a confined program may see and how much it may take. */
export interface ConfineSpec {
  mode: ConfinementMode;
  /** Host paths visible read-only at the same path (the backup, the WAL archive). */
  readOnly: readonly string[];
  /** Where a read-only path is bound from when not itself (a read-only noexec bind of it). */
  readOnlyFrom?: ReadonlyMap<string, string>;
  /** Host directories visible read-write at the same path (the sandbox's own directory). */
  writable: readonly string[];
  /** Host uid/gid the program runs as when Attest is root; undefined: Attest's own. */
  user?: OsUser | undefined;
  /** Process limit (RLIMIT_NPROC, counted in the sandbox's own user namespace). */
  maxProcesses?: number;
  /** Address-space limit per process, bytes (RLIMIT_AS). */
  maxProcessBytes?: number;
  /** A host directory to be the program's /tmp (default: a tmpfs, which takes host memory). */
  tmpDir?: string;
}

/**
 * Limits of a confined reader (a decompressor, pg_waldump): it runs as the backup's owner, which
 * may be the host's postgres account, so it gets no more than a reader needs. RLIMIT_NPROC counts
 * only the processes of its own user namespace.
 */
const READER_LIMITS = { maxProcesses: 64, maxProcessBytes: 2 * 1024 ** 3 } as const;

/** Where bwrap lives; discovered once. */
let bwrapPath: string | undefined;

function findBwrap(): string | undefined {
  if (bwrapPath) return bwrapPath;
  for (const dir of ["/usr/bin", "/usr/local/bin", "/bin"]) {
    if (existsSync(`${dir}/bwrap`)) {
      bwrapPath = `${dir}/bwrap`;
      return bwrapPath;
    }
  }
  return undefined;
}

/** System directories a program needs; everything else of the host stays out of view. */
function systemBinds(): string[] {
  const args = ["--ro-bind", "/usr", "/usr"];
  // merged-/usr systems have these as links; older ones as real directories
  for (const d of ["bin", "sbin", "lib", "lib64", "lib32", "libx32"]) {
    const p = `/${d}`;
    if (!existsSync(p)) continue;
    args.push(...(isUsrLink(p) ? ["--symlink", `usr/${d}`, p] : ["--ro-bind", p, p]));
  }
  // the loader cache and the zone of local time: neither holds anything secret
  for (const f of ["/etc/ld.so.cache", "/etc/localtime"]) {
    if (existsSync(f)) args.push("--ro-bind", f, f);
  }
  return args;
}

function isUsrLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink() && resolve("/", readlinkSync(p)) === `/usr${p}`;
  } catch {
    return false;
  }
}

/**
 * The bwrap command line that runs `program args` confined. `etcDir` holds the passwd and group
 * files the program sees (a name for its uid: initdb and psql look themselves up).
 */
export function confinedArgv(
  program: string,
  args: readonly string[],
  spec: ConfineSpec & { env: Record<string, string>; cwd: string; etcDir: string },
): { cmd: string; args: string[] } {
  const bwrap = findBwrap();
  if (!bwrap) throw new VerifierError(missingBwrapMessage());
  const a = [
    "--unshare-all",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
    "--clearenv",
    ...systemBinds(),
    "--dir",
    "/etc",
    "--ro-bind",
    `${spec.etcDir}/passwd`,
    "/etc/passwd",
    "--ro-bind",
    `${spec.etcDir}/group`,
    "/etc/group",
    // names of an object store's endpoint (store-relay.ts), when a drill reaches one
    ...["hosts", "nsswitch.conf"].flatMap((f) =>
      existsSync(`${spec.etcDir}/${f}`) ? ["--ro-bind", `${spec.etcDir}/${f}`, `/etc/${f}`] : [],
    ),
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    // a tool outside a sandbox (barman recover, a decompressor) gets a /dev/shm of its own:
    // Python's multiprocessing locks live there (barman recover failed with EROFS without it)
    ...(spec.tmpDir ? [] : ["--tmpfs", "/dev/shm"]),
    // bubblewrap's /dev is a tmpfs without noexec that the program owns: a library written to
    // /dev or /dev/shm could be mapped as code. Read-only (the device nodes stay writable, and
    // a /dev/shm mounted above stays a mount of its own); the local server's dynamic shared
    // memory is System V instead (local-sandbox.ts)
    "--remount-ro",
    "/dev",
    ...(spec.tmpDir ? ["--bind", spec.tmpDir, "/tmp"] : ["--tmpfs", "/tmp"]),
  ];
  for (const w of spec.writable) a.push("--bind", w, w);
  for (const r of spec.readOnly) a.push("--ro-bind", spec.readOnlyFrom?.get(r) ?? r, r);
  for (const [k, v] of Object.entries(spec.env)) a.push("--setenv", k, v);
  a.push("--chdir", spec.cwd, "--");
  const limits: string[] = [];
  if (spec.maxProcesses) limits.push(`--nproc=${spec.maxProcesses}`);
  if (spec.maxProcessBytes) limits.push(`--as=${spec.maxProcessBytes}`);
  if (limits.length) a.push("/usr/bin/prlimit", ...limits, "--");
  a.push(program, ...args);
  return { cmd: bwrap, args: a };
}

/** The one line that says bubblewrap is missing and what to do. */
function missingBwrapMessage(): string {
  return "cannot confine the sandbox: bubblewrap (bwrap) is not installed (apt-get install bubblewrap), or set sandbox.confinement: none to drill unconfined";
}

/** Results of probing, per uid: a failed probe is remembered as its message. */
const probes = new Map<string, Promise<string | undefined>>();

/**
 * Checks once per uid that bubblewrap can build a sandbox here (installed, user namespaces
 * allowed); throws a VerifierError naming what is missing.
 */
export async function assertConfinable(user: OsUser | undefined, etcDir: string): Promise<void> {
  const key = String(user?.uid ?? process.getuid?.() ?? "self");
  let probe = probes.get(key);
  if (!probe) {
    probe = (async () => {
      if (!findBwrap()) return missingBwrapMessage();
      const { cmd, args } = confinedArgv("/bin/true", [], {
        mode: "bwrap",
        readOnly: [],
        writable: [],
        user,
        env: { PATH: "/usr/bin:/bin" },
        cwd: "/",
        etcDir,
      });
      const r = await runProcess(cmd, args, {
        timeoutMs: 20_000,
        allowFailure: true,
        env: { PATH: "/usr/bin:/bin" },
        ...(user && isRoot() ? { uid: user.uid, gid: user.gid } : {}),
      });
      if (r.code === 0) return undefined;
      const why = r.stderrTail.split("\n").pop() ?? `exit ${r.code}`;
      const hint = /mount proc/i.test(why)
        ? "inside a container /proc must be unmasked: docker --security-opt systempaths=unconfined, Kubernetes securityContext.procMount: Unmasked with hostUsers: false"
        : "allow unprivileged user namespaces: sysctl user.max_user_namespaces > 0 (and kernel.unprivileged_userns_clone=1 where it exists); inside a container also a seccomp profile that permits them (docker --security-opt seccomp=unconfined, Kubernetes seccompProfile: Unconfined)";
      return `cannot confine the sandbox: bubblewrap could not create namespaces (${why}); ${hint}; or set sandbox.confinement: none to drill unconfined (docs/security.md)`;
    })();
    probes.set(key, probe);
  }
  const problem = await probe;
  if (problem) throw new VerifierError(problem);
}

/** Options of runConfined: what to run with, what it may see. */
export interface ConfinedRunOptions extends Omit<RunOptions, "uid" | "gid" | "cwd"> {
  /** Host paths the program reads (read-only at the same path). */
  readOnly: readonly string[];
  /** Fresh scratch directories the program writes (read-write at the same path; handed to its account). */
  writable?: readonly string[];
  /** Working directory (one of `writable`, or /). */
  cwd?: string;
  /** Host account to run as when Attest is root (default: the owner of the first readOnly path). */
  user?: OsUser | undefined;
}

/**
 * Runs a host-side tool that reads backup content (pg_waldump over a WAL archive, say) confined,
 * with no network and nothing of the host but `readOnly` and `writable`. The environment is not
 * inherited: only `opts.env` and a PATH.
 */
export async function runConfined(
  program: string,
  args: readonly string[],
  opts: ConfinedRunOptions,
): Promise<RunResult> {
  const { readOnly, writable = [], cwd = "/", env, ...run } = opts;
  // as root and told no account: the owner of what it reads (see readerOf)
  const user = opts.user ?? (readOnly[0] && isRoot() ? readerOf(readOnly[0]) : undefined);
  // the scratch directories it writes are the caller's fresh ones: handed to that account
  if (user && isRoot()) for (const w of writable) chownSync(w, user.uid, user.gid);
  const etcDir = etcDirFor(user);
  await assertConfinable(user, etcDir);
  const inner = { PATH: "/usr/local/bin:/usr/bin:/bin", LANG: "C.UTF-8", ...(env as Record<string, string>) };
  const { cmd, args: a } = confinedArgv(program, args, {
    mode: "bwrap",
    readOnly: readOnly.map((p) => resolve(p)),
    writable: writable.map((p) => resolve(p)),
    user,
    env: inner,
    cwd,
    etcDir,
    ...READER_LIMITS,
  });
  return runProcess(cmd, a, {
    ...run,
    env: { PATH: "/usr/bin:/bin" },
    ...(user && isRoot() ? { uid: user.uid, gid: user.gid } : {}),
  });
}

/** passwd/group lines naming `user` (or this process's uid) for the synthetic /etc. */
export function etcFiles(user: OsUser | undefined): { passwd: string; group: string } {
  const uid = user?.uid ?? process.getuid?.() ?? 65534;
  const gid = user?.gid ?? process.getgid?.() ?? 65534;
  const name = user?.name ?? "attest";
  return {
    passwd: `${name}:x:${uid}:${gid}:Attest sandbox:/nonexistent:/usr/sbin/nologin\n`,
    group: `${name}:x:${gid}:\n`,
  };
}

const etcDirs = new Map<number, string>();
const ETC_DIR = /^attest-etc-(\d+)-/;

/**
 * A directory with synthetic passwd/group files naming `user` (one per uid and process, removed
 * at exit). Its name carries this process's pid: a run killed before its exit handler ran leaves
 * it behind, and the next run removes those whose process is gone.
 */
export function etcDirFor(user: OsUser | undefined): string {
  const uid = user?.uid ?? process.getuid?.() ?? 65534;
  let dir = etcDirs.get(uid);
  if (dir) return dir;
  if (etcDirs.size === 0) sweepEtcDirsOfGoneProcesses();
  dir = mkdtempSync(join(tmpdir(), `attest-etc-${process.pid}-`));
  chmodSync(dir, 0o755);
  const files = etcFiles(user);
  writeFileSync(`${dir}/passwd`, files.passwd, { mode: 0o644 });
  writeFileSync(`${dir}/group`, files.group, { mode: 0o644 });
  const made = dir;
  process.once("exit", () => rmSync(made, { recursive: true, force: true }));
  etcDirs.set(uid, dir);
  return dir;
}

function sweepEtcDirsOfGoneProcesses(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(ETC_DIR.exec(name)?.[1] ?? Number.NaN);
    if (!Number.isInteger(pid) || pid === process.pid || processAlive(pid)) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

/**
 * Who a confined reader of `path` runs as: as root, the owner of the path (it can read its own
 * files; root inside a user namespace cannot read another account's), never root's privileges;
 * otherwise Attest's own account.
 */
export function readerOf(path: string): OsUser | undefined {
  if (!isRoot()) return undefined;
  const st = statSync(path);
  return { name: uidName(st.uid), uid: st.uid, gid: st.gid, home: "/nonexistent" };
}

function uidName(uid: number): string {
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const f = line.split(":");
      if (f[2] === String(uid) && f[0]) return f[0];
    }
  } catch {
    // no passwd to read: a name of our own
  }
  return `uid${uid}`;
}

/**
 * How to spawn `program args` as a confined reader of `path` (a decompressor over one file):
 * no network, nothing of the host but /usr and that file, run as its owner. For callers that
 * need a raw stream rather than runConfined's collected result.
 */
export function confinedReaderSpawn(
  program: string,
  args: readonly string[],
  path: string,
): { cmd: string; args: string[]; uid?: number; gid?: number; env: Record<string, string> } {
  const abs = resolve(path);
  const user = readerOf(abs);
  const { cmd, args: a } = confinedArgv(program, args, {
    mode: "bwrap",
    readOnly: [abs],
    writable: [],
    user,
    env: { PATH: "/usr/local/bin:/usr/bin:/bin", LANG: "C.UTF-8" },
    cwd: "/",
    etcDir: etcDirFor(user),
    ...READER_LIMITS,
  });
  return { cmd, args: a, ...(user ? { uid: user.uid, gid: user.gid } : {}), env: { PATH: "/usr/bin:/bin" } };
}

/** The install root of a bin directory outside /usr (its lib/ and share/ must be visible too). */
export function installRoot(binDir: string): string | undefined {
  const abs = resolve(binDir);
  if (abs === "/usr" || abs.startsWith("/usr/")) return undefined;
  return dirname(abs);
}

/** Whether a path names something inside `dir` (or `dir` itself). */
export function isInside(path: string, dir: string): boolean {
  const p = resolve(path);
  const d = resolve(dir);
  return p === d || p.startsWith(`${d}/`);
}
