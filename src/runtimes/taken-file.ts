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
import { basename, join } from "node:path";
import { coerceError, VerifierError } from "../util/errors.js";
import { isRoot } from "../util/os-user.js";

/**
 * Moves `<base>/<rel>` (a regular file, or a directory holding only regular files, that the sandbox
 * wrote below its directory `base` on the host) into a fresh `<parent>/<slot>/`, and when Attest is
 * root makes it root's, readable by group `gid` (the sandbox's) and by no one else. Returns the
 * new host path.
 */
export function takeOutOfReach(
  base: string,
  rel: string,
  parent: string,
  slot: string,
  gid: number | undefined,
): string {
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
    renameSync(source, dest);
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
