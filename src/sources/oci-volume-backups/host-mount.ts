/**
 * The host side of a clone: wait for its device path, mount it under mount_root, find PGDATA,
 * unmount (lazily as a last resort), and the owner records that let a later run sweep mounts
 * a killed run left behind.
 */
import {
  chmodSync,
  type Dirent,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { rmdir } from "node:fs/promises";
import { dirname, join, posix, relative } from "node:path";
import { RefusedFile, readBackupFile } from "../../util/backup-file.js";
import { BackupDefectError, describeError, VerifierError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { runProcess } from "../../util/process.js";
import { retryUntil, systemClock } from "../../util/retry.js";

/** Who mounted a clone, written beside the mount point before mounting. */
export interface MountOwner {
  run: string;
  host: string;
  pid: number;
  pidStart?: string;
  source: string;
  backupId: string;
  volumeId: string;
  attachmentId?: string;
  mountPoint: string;
  /** iSCSI target to log out of, for iscsi attachments. */
  iscsi?: { iqn: string; ipv4: string; port: number };
  started: string;
}

const OWNER_SUFFIX = ".owner.json";

/** Waits until the attachment's device path exists and is a block device; returns the resolved device. */
export async function waitForDevice(path: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
  return retryUntil(
    async () => {
      if (!existsSync(path) || !statSync(path).isBlockDevice()) return undefined;
      return realpathSync(path);
    },
    { timeoutMs, intervalMs: 100, what: `device ${path} to appear`, ...(signal ? { signal } : {}) },
  );
}

/**
 * Creates mount_root (0711: the sandbox user may traverse to its data directory, not list it)
 * and checks that every directory above it lets other users through.
 */
export function ensureMountRoot(mountRoot: string): void {
  mkdirSync(mountRoot, { recursive: true, mode: 0o711 });
  chmodSync(mountRoot, 0o711);
  for (let dir = dirname(mountRoot); ; dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o777;
    if ((mode & 0o001) === 0) {
      throw new VerifierError(
        `${dir} (mode ${mode.toString(8).padStart(4, "0")}) above verifier.mount_root cannot be traversed by the sandbox user; use a mount_root whose parent directories are 0711 or 0755`,
      );
    }
    if (dir === dirname(dir)) return;
  }
}

/** Records (or updates) who owns `mountPoint`; written before mounting, so a crash right after still leaves it. */
export function writeMountOwner(owner: MountOwner): string {
  const file = `${owner.mountPoint}${OWNER_SUFFIX}`;
  writeFileSync(file, `${JSON.stringify(owner, null, 2)}\n`, { mode: 0o600 });
  return file;
}

/** Every owner record under mount_root. */
export function readMountOwners(mountRoot: string): Array<{ file: string; owner: MountOwner | undefined }> {
  if (!existsSync(mountRoot)) return [];
  return readdirSync(mountRoot)
    .filter((n) => n.endsWith(OWNER_SUFFIX))
    .map((n) => {
      const file = join(mountRoot, n);
      try {
        return { file, owner: JSON.parse(readFileSync(file, "utf8")) as MountOwner };
      } catch {
        return { file, owner: undefined };
      }
    });
}

/** Removes a mount point directory and its owner record (the mount must be gone). */
export async function removeMountPoint(mountPoint: string): Promise<void> {
  if (existsSync(mountPoint)) await rmdir(mountPoint);
  rmSync(`${mountPoint}${OWNER_SUFFIX}`, { force: true });
}

/** Mounts `device` at `mountPoint` (created 0711) with `options`. */
export async function mountDevice(
  device: string,
  mountPoint: string,
  options: string,
  signal?: AbortSignal,
): Promise<void> {
  mkdirSync(mountPoint, { mode: 0o711 });
  const r = await runProcess("mount", [...(options ? ["-o", options] : []), "--", device, mountPoint], {
    timeoutMs: 120_000,
    allowFailure: true,
    ...(signal ? { signal } : {}),
  });
  if (r.code !== 0) {
    throw new VerifierError(`mount ${device} at ${mountPoint} failed: ${r.stderrTail || `exit ${r.code}`}`);
  }
  // the clone's root directory: the sandbox user must traverse it to reach PGDATA
  chmodSync(mountPoint, 0o711);
}

/** Whether something is mounted exactly at `path`. */
export async function isMountPoint(path: string): Promise<boolean> {
  const r = await runProcess("findmnt", ["-n", "--mountpoint", path], {
    timeoutMs: 15_000,
    allowFailure: true,
  });
  return r.code === 0 && r.stdout.trim() !== "";
}

/** Where a block device is mounted (empty when it is not). */
export async function mountTargetsOf(device: string): Promise<string[]> {
  const r = await runProcess("findmnt", ["-n", "-l", "-o", "TARGET", "--source", device], {
    timeoutMs: 15_000,
    allowFailure: true,
  });
  return r.code === 0 ? r.stdout.split("\n").filter(Boolean) : [];
}

/**
 * Unmounts `mountPoint`: a few plain attempts (a server that just stopped may still hold files),
 * then a lazy unmount as the last resort. Returns how it ended, for the record.
 */
export async function unmount(
  mountPoint: string,
  logger: Logger,
): Promise<"not-mounted" | "unmounted" | "lazy"> {
  if (!(await isMountPoint(mountPoint))) return "not-mounted";
  let last = "";
  for (let attempt = 1; attempt <= 5; attempt++) {
    const r = await runProcess("umount", ["--", mountPoint], { timeoutMs: 60_000, allowFailure: true });
    if (r.code === 0 || !(await isMountPoint(mountPoint))) return "unmounted";
    last = r.stderrTail;
    logger.warn("umount failed, retrying", { mountPoint, attempt, error: last });
    await systemClock.sleep(500 * attempt);
  }
  const lazy = await runProcess("umount", ["-l", "--", mountPoint], {
    timeoutMs: 60_000,
    allowFailure: true,
  });
  if (lazy.code !== 0 && (await isMountPoint(mountPoint))) {
    throw new VerifierError(`cannot unmount ${mountPoint}: ${lazy.stderrTail || last}`);
  }
  logger.warn("unmounted lazily: something still held the clone's filesystem", { mountPoint, error: last });
  return "lazy";
}

/** Where PGDATA is on a mounted clone, and its major version. */
export interface FoundDataDir {
  dataDir: string;
  /** Relative to the volume's root ("" = the root itself). */
  subdir: string;
  pgMajor: number;
}

/** How deep below the volume's root PGDATA is looked for (Debian's `postgresql/15/main` is 3). */
export const DATA_DIR_SEARCH_DEPTH = 4;

/**
 * Finds PGDATA: `subdir` when configured, else the one directory within
 * DATA_DIR_SEARCH_DEPTH levels that holds PG_VERSION and global/pg_control. Not finding it
 * is `error`, naming where it looked: a layout Attest does not know proves nothing about the
 * backup.
 */
export function findDataDir(mountPoint: string, subdir: string | undefined): FoundDataDir {
  const at = (given: string): FoundDataDir | undefined => {
    // "pgdata//", "./pgdata" and "/pgdata" name one directory
    let rel = posix.normalize(given || ".").replace(/^\/+|\/+$/g, "");
    if (rel === ".") rel = "";
    const linked = rel ? join(mountPoint, rel) : mountPoint;
    if (!existsSync(join(linked, "PG_VERSION"))) return undefined;
    // the clone is the production server's disk: a link on the way (data_subdir) that leaves it
    // would have Attest, as root, hand a host directory to the sandbox. A link that stays on the
    // clone (pgdata -> data/15) is followed to where it leads; one that leaves it names a path
    // of the production host, which is not here to verify
    const root = realpathSync(mountPoint);
    const dir = realpathSync(linked);
    if (dir !== root && !dir.startsWith(`${root}/`))
      throw new VerifierError(
        `${posix.join("/", rel)} on the clone is a symbolic link that leaves the clone (to ${dir}); set verifier.data_subdir to the data directory's real place on the volume`,
      );
    rel = relative(root, dir);
    const file = join(dir, "PG_VERSION");
    let text: string;
    try {
      text = readBackupFile(file, 4096).toString("utf8");
    } catch (err) {
      const what = `${posix.join("/", rel, "PG_VERSION")} on the clone`;
      // a link or a special file is the disk's content; a read error is the host's
      if (err instanceof RefusedFile)
        throw new BackupDefectError(`${what} ${describeError(err)}`, { cause: err });
      throw new VerifierError(`cannot read ${what}: ${describeError(err)}`, { cause: err });
    }
    const major = Number.parseInt(text.trim(), 10);
    if (!Number.isInteger(major) || major < 9) {
      throw new BackupDefectError(
        `${posix.join("/", rel, "PG_VERSION")} on the clone does not hold a version`,
      );
    }
    return { dataDir: dir, subdir: rel, pgMajor: major };
  };
  if (subdir !== undefined) {
    const found = at(subdir);
    if (!found)
      throw new VerifierError(
        `no PostgreSQL data directory at ${subdir} on the clone (no PG_VERSION); check verifier.data_subdir`,
      );
    return found;
  }
  const { found, searched } = searchDataDirs(mountPoint);
  if (found.length === 1) return at(found[0]!)!;
  if (found.length > 1) {
    throw new VerifierError(
      `several data directories on the clone (${found.map((f) => f || "/").join(", ")}); set verifier.data_subdir`,
    );
  }
  const shown = searched.slice(0, 12).map((r) => posix.join("/", r));
  const more = searched.length > shown.length ? ` and ${searched.length - shown.length} more` : "";
  throw new VerifierError(
    `no PostgreSQL data directory (PG_VERSION and global/pg_control) on the clone within ${DATA_DIR_SEARCH_DEPTH} levels; searched ${shown.join(", ")}${more}; set verifier.data_subdir if it lies elsewhere`,
  );
}

/** Directories (relative) holding PG_VERSION and global/pg_control, breadth first, and all it looked in. */
function searchDataDirs(mountPoint: string): { found: string[]; searched: string[] } {
  const found: string[] = [];
  const searched: string[] = [];
  let level = [""];
  for (let depth = 0; depth <= DATA_DIR_SEARCH_DEPTH && level.length > 0; depth++) {
    const next: string[] = [];
    for (const rel of level) {
      const dir = rel ? join(mountPoint, rel) : mountPoint;
      searched.push(rel);
      if (existsSync(join(dir, "PG_VERSION")) && existsSync(join(dir, "global", "pg_control"))) {
        // a data directory's own subdirectories (base/<oid> has a PG_VERSION too) are not others
        found.push(rel);
        continue;
      }
      let entries: Dirent[];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch (err) {
        if (depth === 0)
          throw new VerifierError(`cannot read the clone's root directory: ${describeError(err)}`, {
            cause: err,
          });
        continue;
      }
      // symbolic links are not followed: they may point off the clone
      for (const e of entries)
        if (e.isDirectory() && e.name !== "lost+found") next.push(rel ? `${rel}/${e.name}` : e.name);
    }
    level = next.sort();
  }
  return { found, searched };
}
