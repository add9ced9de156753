/**
 * A sandbox server's socket directory, the only way in to it. It is the sandbox's while its
 * server starts (the server must create the socket), and Attest's (root's) from the moment the
 * socket exists, so nothing in the sandbox can swap the socket for a link to another server's
 * socket, which Attest would follow on the host. Both runtimes use it.
 */
import { chmodSync, chownSync, lstatSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { VerifierError } from "../util/errors.js";
import { isRoot } from "../util/os-user.js";

/** The socket's name in its directory (port 5432; the server listens on no TCP port). */
export const SOCKET_NAME = ".s.PGSQL.5432";

/**
 * Empties the directory and gives it to the sandbox's account before its server starts. Not
 * root: `openToAll` makes it 0777 (a container's user differs from Attest's), else it stays as is.
 */
export function handOverSocketDir(
  dir: string,
  owner: { uid: number; gid: number } | undefined,
  opts: { openToAll?: boolean } = {},
): void {
  // what is in it was made by a previous server of this sandbox: its socket and lock file. Root
  // never walks into a directory there: in a container, a process the backup's code started may
  // outlive its server and swap a subdirectory for a link to a host directory mid-removal
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    // a lingering process may remove its own file between the listing and this look: gone is fine
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory())
      throw new VerifierError(`the sandbox made a directory ${p} in its socket directory: refusing to start`);
    rmSync(p, { force: true });
  }
  if (isRoot() && owner) {
    chownSync(dir, owner.uid, owner.gid);
    chmodSync(dir, 0o700);
  } else if (opts.openToAll) chmodSync(dir, 0o777);
}

/**
 * Once the server's socket exists, takes the directory back and checks the socket is a socket
 * of the sandbox's account. False while it is not there yet; a VerifierError when it is not a
 * socket the sandbox's server made.
 */
export function takeSocketDir(dir: string, owner: { uid: number } | undefined): boolean {
  const socket = join(dir, SOCKET_NAME);
  if (!lstatSync(socket, { throwIfNoEntry: false })) return false;
  if (isRoot()) {
    // The server may be between bind() and its chmod() of the socket right now: the directory
    // must stay searchable by the sandbox's account at every step, or that chmod fails with
    // EACCES and the server exits ("could not create any Unix-domain sockets"). So 0711 first,
    // while the account still owns it, then root's; and 0711 once more, now that the account
    // can no longer change it, in case it did in between.
    chmodSync(dir, 0o711);
    chownSync(dir, 0, 0);
    chmodSync(dir, 0o711);
  }
  const st = lstatSync(socket, { throwIfNoEntry: false });
  if (!st?.isSocket() || (owner && isRoot() && st.uid !== owner.uid))
    throw new VerifierError(
      `the sandbox's socket ${socket} is not a socket of its server: refusing to connect`,
    );
  return true;
}
