/** Host side of "attaching" a volume: image copies, loop devices and device-path symlinks. */
import { execFile } from "node:child_process";
import { copyFile, mkdir, rm, symlink } from "node:fs/promises";
import { dirname } from "node:path";

const COMMAND_TIMEOUT_MS = 60_000;

/** Runs a host command with a timeout; a failure carries the stderr tail. */
export function runCommand(cmd: string, args: string[], timeoutMs = COMMAND_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const tail = stderr.trim().split("\n").slice(-5).join(" | ");
      const why = err.killed ? `timed out after ${timeoutMs} ms` : `exit ${String(err.code)}`;
      reject(new Error(`${cmd} ${args.join(" ")}: ${why}${tail ? `: ${tail}` : ""}`, { cause: err }));
    });
  });
}

/** Copies a backup image into a clone, sharing extents where the filesystem allows it. */
export async function copyImage(source: string, target: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  try {
    await runCommand("cp", ["--reflink=auto", "--sparse=always", source, target]);
  } catch {
    // No GNU cp (or it refused): a plain copy is slower but equivalent.
    await copyFile(source, target);
  }
}

/** Where a block device is mounted on the host (empty when it is not). */
export async function mountTargets(device: string): Promise<string[]> {
  try {
    const out = await runCommand("findmnt", ["-n", "-l", "-o", "TARGET", "--source", device]);
    return out.split("\n").filter(Boolean);
  } catch {
    return []; // findmnt exits 1 when nothing matches
  }
}

/** Loop devices whose backing file lies under `dir` (`losetup` reads the full path from sysfs). */
export async function loopDevicesBackedBy(dir: string): Promise<string[]> {
  const out = await runCommand("losetup", ["--list", "--noheadings", "--output", "NAME,BACK-FILE"]);
  return out
    .split("\n")
    .map((line) => line.trim().split(/\s+/, 2))
    .filter(([, file]) => file?.startsWith(`${dir}/`))
    .map(([device]) => device!);
}

/** Loop devices this emulator bound, so that it releases exactly those and nothing else. */
export class LoopDevices {
  readonly #bound = new Map<string, string>();

  /** Binds an image to the first free loop device; returns `/dev/loopN`. */
  async bind(imagePath: string, readOnly = false): Promise<string> {
    const args = ["-f", "--show", ...(readOnly ? ["-r"] : []), imagePath];
    const device = (await runCommand("losetup", args)).trim();
    if (!device.startsWith("/dev/loop")) throw new Error(`losetup printed an unexpected device: ${device}`);
    this.#bound.set(device, imagePath);
    return device;
  }

  /** Releases a device this emulator bound; still-mounted devices are released by the kernel at unmount. */
  async release(device: string): Promise<void> {
    if (!this.#bound.has(device)) return;
    await runCommand("losetup", ["-d", device]);
    this.#bound.delete(device);
  }

  /** Devices bound now, with their image files. */
  list(): Array<{ device: string; imagePath: string }> {
    return [...this.#bound].map(([device, imagePath]) => ({ device, imagePath }));
  }
}

/** Points `linkPath` (e.g. <deviceRoot>/oraclevdb) at a loop device. */
export async function linkDevice(linkPath: string, device: string): Promise<void> {
  await mkdir(dirname(linkPath), { recursive: true });
  await rm(linkPath, { force: true });
  await symlink(device, linkPath);
}

/** Removes a device symlink if it is there. */
export async function unlinkDevice(linkPath: string): Promise<void> {
  await rm(linkPath, { force: true });
}
