/** Leaves the host as the emulator found it: no device links, no loop devices, no state dir. */
import { rm } from "node:fs/promises";
import { loopDevicesBackedBy, mountTargets, runCommand, unlinkDevice } from "./host-devices.js";
import { coerceError } from "./http-io.js";
import type { EmulatorCore } from "./routing.js";

/**
 * Removes device links, unmounts (recording a problem) and releases every loop device backed by
 * the state dir, then removes the state dir. Returns loop devices that could not be released;
 * throws when a cleanup step failed, after trying all of them.
 */
export async function cleanUpHost(core: EmulatorCore): Promise<string[]> {
  const errors: Error[] = [];
  const attempt = async (what: string, step: () => Promise<unknown>): Promise<void> => {
    try {
      await step();
    } catch (err) {
      errors.push(new Error(`${what}: ${coerceError(err).message}`, { cause: err }));
    }
  };

  for (const attachment of core.store.attachments.values()) {
    const link = attachment.hostPath;
    if (link) await attempt(`remove ${link}`, () => unlinkDevice(link));
  }
  // Ours: those still bound, and those detached while mounted (the kernel keeps them until unmount).
  const ours = new Set([
    ...core.loops.list().map((l) => l.device),
    ...(await loopDevicesBackedBy(core.stateDir)),
  ]);
  for (const device of ours) {
    for (const target of await mountTargets(device)) {
      core.store.problems.push(`${device} was still mounted at ${target} when the emulator closed`);
      await attempt(`umount ${target}`, () => runCommand("umount", [target]));
    }
    await attempt(`release ${device}`, () => core.loops.release(device));
  }
  // A device detached while mounted is cleared by the kernel once unmounted, and a device udev
  // is still probing refuses -d: both go a moment later, so wait for that (10 s at most).
  let remaining = await loopDevicesBackedBy(core.stateDir);
  for (let i = 0; remaining.length > 0 && i < 100; i++) {
    for (const device of remaining) await runCommand("losetup", ["-d", device]).catch(() => undefined);
    remaining = await loopDevicesBackedBy(core.stateDir);
    if (remaining.length > 0) await new Promise((r) => setTimeout(r, 100));
  }
  for (const device of remaining)
    core.store.problems.push(`loop device ${device} still uses an emulator image`);
  await attempt(`remove ${core.stateDir}`, () => rm(core.stateDir, { recursive: true, force: true }));
  if (errors.length > 0) {
    throw new AggregateError(
      errors,
      `OCI emulator cleanup failed: ${errors.map((e) => e.message).join("; ")}`,
    );
  }
  return remaining;
}
