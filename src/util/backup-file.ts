/**
 * Reading a small file of a backup on the host (a backup_label, a backup_manifest, a timeline
 * history file of a WAL archive). Whoever wrote the backup chose the file's type: a symbolic link
 * to a host file would put that file's text (read as root) into a problem message and the run's
 * records, a FIFO would block Attest for good, a device would never end. So the file is opened
 * without following a link and without waiting, must be a regular file, and is read up to a bound.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync } from "node:fs";

/**
 * A backup's file Attest will not read as it is: a link, a FIFO, a device, a file over its bound.
 * The backup's writer chose that; an error from the filesystem itself (EACCES, EIO) is not one.
 */
export class RefusedFile extends Error {
  override readonly name = "RefusedFile";
}

/**
 * Opens the regular file at `path` for reading: never waiting on a FIFO, never a device or
 * socket, and (unless `follow`, for a path the configuration names) never through a final link.
 * Returns the descriptor; the caller closes it.
 */
export function openBackupFile(path: string, opts: { follow?: boolean } = {}): number {
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | (opts.follow ? 0 : constants.O_NOFOLLOW);
  let fd: number;
  try {
    fd = openSync(path, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP")
      throw new RefusedFile("is a symbolic link: not followed", { cause: err });
    throw err;
  }
  try {
    if (!fstatSync(fd).isFile()) throw new RefusedFile("is not a regular file: not read");
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/** The bytes of the regular file at `path` (at most `maxBytes`); throws for a link, a special file, a larger file. */
export function readBackupFile(path: string, maxBytes: number): Buffer {
  const fd = openBackupFile(path);
  try {
    const st = fstatSync(fd);
    if (st.size > maxBytes) throw new RefusedFile(`is larger than ${maxBytes} bytes: not read`);
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Throws unless `path` itself is a regular file (no link, FIFO or device): before a reader that follows links. */
export function assertRegularFile(path: string): void {
  if (!lstatSync(path).isFile()) throw new RefusedFile("is a link or a special file: not read");
}
