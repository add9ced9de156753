/** A docker sandbox's host directory: its bind-mounted /sandbox (socket, log, data), private input copies, and owner. */
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describeError, VerifierError } from "../../util/errors.js";
import { isRoot } from "../../util/os-user.js";
import { bindReadOnlyNoexec, mountNoexec, unmountUnder } from "../noexec-mounts.js";
import { LABEL, ownerIsDead, ownerLabels } from "./docker-container.js";
import type { MountedInput } from "./docker-sandbox.js";

/** Names of sandbox host directories under the work directory. */
export const HOST_DIR_PREFIX = "attest-docker-sandbox-";
const OWNER_FILE = "owner.json";
/** The kernel's limit on a Unix socket path (sun_path), terminator included. */
const SOCKET_PATH_MAX = 107;
/** A directory without an owner file younger than this may be one being created right now. */
const UNOWNED_GRACE_MS = 10 * 60_000;

/** The host side of a sandbox's mounts. */
export interface HostDir {
  /** The sandbox's own directory (0700, Attest's), holding the others. */
  dir: string;
  /** Bound read-write at /sandbox. */
  sandbox: string;
  /**
   * The server's socket directory, bound on its own at /sandbox/sock: Attest connects here. It
   * lies outside the directory the container owns (a mount point cannot be renamed or replaced
   * from inside), and is the container's only while its server starts (lockSockets).
   */
  sockets: string;
  /** /sandbox/run inside: pid files of the programs exec runs (made before the first exec). */
  pids: string;
  /** Bound read-only at /copies: private copies of inputs the sandbox user could not read. */
  copies: string;
  /** As root: a read-only noexec view of `copies`, what the engine binds instead (makeHostDirNoexec). */
  copiesView?: string;
}

/** The numeric identity the container's processes run as (host view). */
export interface SandboxIds {
  uid: number;
  gid: number;
  groups: number[];
}

/** Makes a fresh host directory under `root`, recording this process as its owner. */
export function createHostDir(root: string): HostDir {
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(join(root, HOST_DIR_PREFIX));
  const h: HostDir = {
    dir,
    sandbox: join(dir, "sandbox"),
    sockets: join(dir, "sock"),
    pids: join(dir, "sandbox", "run"),
    copies: join(dir, "copies"),
  };
  try {
    chmodSync(dir, 0o700);
    const {
      [LABEL.pid]: pid,
      [LABEL.pidStart]: pidStart,
      [LABEL.host]: host,
    } = ownerLabels({
      run: "",
      source: "",
      backup: "",
    });
    writeFileSync(
      join(dir, OWNER_FILE),
      `${JSON.stringify({ [LABEL.pid]: pid, [LABEL.pidStart]: pidStart, [LABEL.host]: host })}\n`,
    );
    for (const d of [h.sandbox, h.sockets, h.pids]) mkdirSync(d, { mode: 0o700 });
    // the mount point of the socket directory inside /sandbox, made before the container owns it
    mkdirSync(join(h.sandbox, "sock"), { mode: 0o755 });
    // the sandbox user must enter it (it is bound at /copies); each copy inside is private to that user
    mkdirSync(h.copies, { mode: 0o755 });
    chmodSync(h.copies, 0o755);
    const socket = join(h.sockets, ".s.PGSQL.5432");
    if (socket.length > SOCKET_PATH_MAX) {
      throw new VerifierError(
        `sandbox.docker.work_dir ${root} is too deep: the socket path ${socket} is longer than ${SOCKET_PATH_MAX} bytes`,
      );
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return h;
}

/**
 * Hands /sandbox and its socket directory to the container's user. As root: chown, so they stay
 * 0700. Otherwise they are opened to all (0777): the enclosing directory is 0700 and Attest's, so
 * no other host account can reach them, and inside the container every process is that user.
 */
export function handOver(h: HostDir, ids: SandboxIds): void {
  for (const d of [h.sandbox, h.sockets, h.pids]) {
    if (isRoot()) chownSync(d, ids.uid, ids.gid);
    else chmodSync(d, 0o777);
  }
}

/** The uid, gid and groups of a host process (the container's init), from /proc; undefined when not visible. */
export function processIds(pid: number): SandboxIds | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(text)?.[1];
  const uid = Number(field("Uid")?.split(/\s+/)[1]); // effective
  const gid = Number(field("Gid")?.split(/\s+/)[1]);
  const groups = (field("Groups") ?? "").split(/\s+/).filter(Boolean).map(Number);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
  return { uid, gid, groups };
}

/**
 * As root, makes the whole host directory non-executable (one mount: /sandbox, its socket
 * directory and the private copies stay on one filesystem, so moving a file out of the
 * sandbox's reach is a rename), and the copies and each input visible through read-only noexec
 * binds under it: the container's binds inherit nosuid,nodev,noexec, so a library the backup
 * ships, or one its SQL writes, cannot be mapped as code. False when not root (nothing mounted).
 */
export async function makeHostDirNoexec(h: HostDir, inputs: MountedInput[]): Promise<boolean> {
  if (!(await mountNoexec([h.dir]))) return false;
  const view = join(h.dir, "copies-view");
  await bindReadOnlyNoexec(h.copies, view);
  h.copiesView = view;
  for (const [i, input] of inputs.entries()) {
    const dest = join(h.dir, "inputs", String(i + 1));
    await bindReadOnlyNoexec(input.hostPath, dest);
    input.bindSource = dest;
  }
  return true;
}

/** Removes a sandbox's host directory, its noexec mounts first; a directory already gone is fine. */
export async function removeHostDir(dir: string): Promise<void> {
  // rm would stop at a busy mount point
  await unmountUnder(dir);
  rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
}

/** Removes host directories under `root` whose owner process is gone; returns what it removed and kept. */
export async function sweepHostDirs(
  root: string,
): Promise<{ removed: string[]; kept: string[]; failed: string[] }> {
  const report = { removed: [] as string[], kept: [] as string[], failed: [] as string[] };
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => n.startsWith(HOST_DIR_PREFIX));
  } catch {
    return report;
  }
  for (const name of names) {
    const dir = join(root, name);
    let dead: boolean;
    try {
      dead = ownerIsDead(JSON.parse(readFileSync(join(dir, OWNER_FILE), "utf8")) as Record<string, string>);
    } catch {
      // no (readable) owner file: a crash between mkdtemp and its write, or one being made now
      dead = Date.now() - (statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? 0) > UNOWNED_GRACE_MS;
    }
    if (!dead) {
      report.kept.push(dir);
      continue;
    }
    try {
      await removeHostDir(dir);
      report.removed.push(dir);
    } catch (err) {
      report.failed.push(`${dir}: ${describeError(err)}`);
    }
  }
  return report;
}
