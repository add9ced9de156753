/**
 * Moving what a sandbox wrote (a dump fetched from a store, a decompressed archive) out of its
 * reach, for both runtimes: Attest reads such a file on the host (an archive's TOC, a plain
 * dump's bytes), also after the backup's own code has run in the sandbox, which could otherwise
 * swap it for a link to a host file. Done before anything of the backup runs.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  realpathSync,
  renameSync,
} from "node:fs";
import { open, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { coerceError, VerifierError } from "../util/errors.js";
import { isRoot } from "../util/os-user.js";

/**
 * Moves `<base>/<rel>` (a regular file, or a directory holding only regular files, that the sandbox
 * wrote below its directory `base` on the host) into a fresh `<parent>/<slot>/`, and when Attest is
 * root makes it root's, readable by group `gid` (the sandbox's) and by no one else. Returns the
 * new host path. Where the source lies on a mount of its own (the sandbox's non-executable
 * binds), it is copied, through descriptors that never follow a link, and then removed.
 */
export async function takeOutOfReach(
  base: string,
  rel: string,
  parent: string,
  slot: string,
  gid: number | undefined,
): Promise<string> {
  const source = join(base, rel);
  try {
    // nothing of the backup has run yet, but a link on the way below base is not what was written
    if (rel.split("/").includes("..") || realpathSync(source) !== join(realpathSync(base), rel))
      throw new Error("its path leaves the sandbox's directory or passes through a link");
    const st = lstatSync(source);
    if (st.isDirectory()) {
      for (const name of readdirSync(source))
        if (!lstatSync(join(source, name)).isFile()) throw new Error(`${name} is not a regular file`);
    } else if (!st.isFile()) throw new Error("not a regular file");
    const dir = join(parent, slot);
    mkdirSync(dir, { mode: 0o700 });
    const dest = join(dir, basename(source));
    await moveAcrossMounts(source, dest, st.isDirectory());
    // unprivileged, Attest cannot give it away: readable by all, inside a directory of its own
    if (!isRoot() || gid === undefined) chmodSync(dir, 0o755);
    else {
      own(dir, gid, 0o750);
      own(dest, gid, st.isDirectory() ? 0o750 : 0o640);
      if (st.isDirectory()) for (const name of readdirSync(dest)) own(join(dest, name), gid, 0o640);
    }
    return dest;
  } catch (err) {
    throw new VerifierError(`cannot take ${source} out of the sandbox's reach: ${coerceError(err).message}`, {
      cause: err,
    });
  }
}

/** rename(2), or on another mount a copy of the file (or of each file of the directory) and removal. */
async function moveAcrossMounts(source: string, dest: string, isDir: boolean): Promise<void> {
  try {
    renameSync(source, dest);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
  }
  if (isDir) {
    mkdirSync(dest, { mode: 0o700 });
    for (const name of readdirSync(source)) await copyRegularFile(join(source, name), join(dest, name));
  } else await copyRegularFile(source, dest);
  await rm(source, { recursive: true, force: true });
}

/** Copies a regular file opened with O_NOFOLLOW (a link put in its place is refused, never followed). */
async function copyRegularFile(from: string, to: string): Promise<void> {
  const src = await open(from, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  let out: Awaited<ReturnType<typeof open>>;
  try {
    if (!(await src.stat()).isFile()) throw new Error(`${from} is not a regular file`);
    out = await open(to, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (err) {
    await src.close();
    throw err;
  }
  // the streams close both descriptors when they end or fail
  await pipeline(src.createReadStream(), out.createWriteStream());
}

/** root:gid and `mode`, through a descriptor opened without following a link. */
function own(path: string, gid: number, mode: number): void {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() && !st.isDirectory()) throw new Error(`${path} is neither a file nor a directory`);
    fchownSync(fd, 0, gid);
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}
