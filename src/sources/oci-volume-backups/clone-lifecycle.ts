/**
 * The cloud side of a clone: create it from a backup, attach it to the verifier, detach it,
 * delete it, each waited out by polling (the SDK's TERMINATED waiter throws 404 instead of
 * returning). Guards make every mutating call prove it touches one of our clones and the
 * verifier instance, never the production volume or a backup.
 */
import { hostname } from "node:os";
import { VerifierError } from "../../util/errors.js";
import { processStartTime } from "../../util/os-user.js";
import { retryUntil } from "../../util/retry.js";
import type { OciApi, OciVolume, OciVolumeAttachment } from "./oci-api.js";
import { OciCallError } from "./oci-retry.js";
import type { OciVolumeBackupsSourceConfig } from "./oci-volume-config.js";

/** Freeform tag naming the run that created a resource; only resources carrying it are ever changed. */
export const RUN_TAG = "attest-run";

/** Freeform tags every clone carries: who made it, so a later run can tell a leftover. */
export function ownerTags(runId: string, source: string): Record<string, string> {
  return {
    [RUN_TAG]: runId,
    "attest-host": hostname(),
    "attest-pid": String(process.pid),
    "attest-pid-start": processStartTime(process.pid) ?? "",
    "attest-source": source,
  };
}

/** What every step needs. */
export interface CloneApi {
  api: OciApi;
  cfg: OciVolumeBackupsSourceConfig;
  signal?: AbortSignal;
}

/** Polls `step` until it returns a value; an error thrown by `step` ends the wait at once. */
async function pollFor<T>(
  step: () => Promise<T | undefined>,
  what: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<T> {
  const out = await retryUntil<{ value: T } | { error: unknown }>(
    async () => {
      try {
        const value = await step();
        return value === undefined ? undefined : { value };
      } catch (error) {
        return { error };
      }
    },
    { timeoutMs, intervalMs: 250, what, ...(signal ? { signal } : {}) },
  );
  if ("error" in out) throw out.error;
  return out.value;
}

const isNotFound = (err: unknown) => err instanceof OciCallError && err.status === 404;
const isIncorrectState = (err: unknown) => err instanceof OciCallError && err.status === 409;

/** Throws unless `v` is one of our clones: tagged by a run, made from a backup, not the production volume. */
export function assertClone(v: OciVolume, cfg: OciVolumeBackupsSourceConfig): void {
  if (v.id === cfg.volume_id) throw new VerifierError(`refusing to change the production volume ${v.id}`);
  if (!v.freeformTags?.[RUN_TAG])
    throw new VerifierError(`refusing to change volume ${v.id}: it carries no ${RUN_TAG} tag`);
  if (v.sourceDetails && v.sourceDetails.type !== "volumeBackup")
    throw new VerifierError(`refusing to change volume ${v.id}: it was not cloned from a volume backup`);
}

/** Creates a clone of `backupId` in the verifier's availability domain. */
export async function createClone(
  c: CloneApi,
  backupId: string,
  displayName: string,
  tags: Record<string, string>,
): Promise<OciVolume> {
  const v = await c.api.createVolume({
    compartmentId: c.cfg.clone_compartment_id ?? c.cfg.compartment_id,
    availabilityDomain: c.cfg.verifier.availability_domain,
    displayName,
    backupId,
    freeformTags: tags,
    ...(c.cfg.clone_defined_tags ? { definedTags: c.cfg.clone_defined_tags } : {}),
    retryToken: displayName,
  });
  assertClone(v, c.cfg);
  return v;
}

/** Waits until the clone is AVAILABLE; FAULTY (or gone) is an error. */
export async function waitAvailable(c: CloneApi, volumeId: string, backupId: string): Promise<OciVolume> {
  return pollFor(
    async () => {
      const v = await c.api.getVolume(volumeId);
      if (v.lifecycleState === "AVAILABLE") return v;
      if (v.lifecycleState === "FAULTY")
        throw new VerifierError(
          `clone ${volumeId} of backup ${backupId} became FAULTY (OCI could not restore the backup into a volume)`,
        );
      if (v.lifecycleState === "TERMINATING" || v.lifecycleState === "TERMINATED")
        throw new VerifierError(
          `clone ${volumeId} of backup ${backupId} is ${v.lifecycleState} (deleted by someone else?)`,
        );
      return undefined;
    },
    `clone ${volumeId} to become AVAILABLE`,
    c.cfg.limits.clone_timeout,
    c.signal,
  );
}

/** Attaches a clone to the verifier instance on a free device; a device taken meanwhile is retried. */
export async function attachClone(
  c: CloneApi,
  volumeId: string,
  displayName: string,
): Promise<OciVolumeAttachment> {
  const instanceId = c.cfg.verifier.instance_id;
  for (let attempt = 1; ; attempt++) {
    const free = await c.api.listAvailableDevices(instanceId);
    const device = free[0];
    if (!device) throw new VerifierError(`no free device path on the verifier instance ${instanceId}`);
    try {
      return await c.api.attachVolume({
        type: c.cfg.verifier.attach,
        instanceId,
        volumeId,
        device,
        displayName,
      });
    } catch (err) {
      // another drill (or person) took the device between the listing and the attach
      if (attempt < 4 && err instanceof OciCallError && err.status === 409 && /device/i.test(err.message))
        continue;
      throw err;
    }
  }
}

/** Waits until an attachment is ATTACHED. */
export async function waitAttached(c: CloneApi, attachmentId: string): Promise<OciVolumeAttachment> {
  return pollFor(
    async () => {
      const a = await c.api.getVolumeAttachment(attachmentId);
      if (a.lifecycleState === "ATTACHED") return a;
      if (a.lifecycleState === "DETACHING" || a.lifecycleState === "DETACHED")
        throw new VerifierError(`attachment ${attachmentId} became ${a.lifecycleState} while attaching`);
      return undefined;
    },
    `attachment ${attachmentId} to become ATTACHED`,
    c.cfg.limits.lifecycle_timeout,
    c.signal,
  );
}

/** Detaches an attachment of one of our clones from the verifier and waits for DETACHED. */
export async function detachClone(c: CloneApi, attachmentId: string): Promise<void> {
  let a: OciVolumeAttachment;
  try {
    a = await c.api.getVolumeAttachment(attachmentId);
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  if (a.instanceId !== c.cfg.verifier.instance_id)
    throw new VerifierError(
      `refusing to detach ${attachmentId}: it is on instance ${a.instanceId}, not the verifier`,
    );
  assertClone(await c.api.getVolume(a.volumeId), c.cfg);
  if (a.lifecycleState === "ATTACHING") a = await waitAttached(c, attachmentId);
  if (a.lifecycleState === "ATTACHED") {
    try {
      await c.api.detachVolume(attachmentId);
    } catch (err) {
      // a retried DetachVolume whose first try went through answers 409: the state says what happened
      if (!isIncorrectState(err)) throw err;
    }
  }
  await pollFor(
    async () => {
      try {
        return (await c.api.getVolumeAttachment(attachmentId)).lifecycleState === "DETACHED"
          ? true
          : undefined;
      } catch (err) {
        if (isNotFound(err)) return true;
        throw err;
      }
    },
    `attachment ${attachmentId} to become DETACHED`,
    c.cfg.limits.lifecycle_timeout,
    c.signal,
  );
}

/** Deletes one of our clones and waits until it is TERMINATED (or answers 404). */
export async function deleteClone(c: CloneApi, volumeId: string): Promise<void> {
  const state = async (): Promise<OciVolume | undefined> => {
    try {
      return await c.api.getVolume(volumeId);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const v = await state();
  if (!v || v.lifecycleState === "TERMINATED") return;
  assertClone(v, c.cfg);
  const notProvisioning = () =>
    pollFor(
      async () => {
        const now = await state();
        return now && ["PROVISIONING", "RESTORING"].includes(now.lifecycleState) ? undefined : true;
      },
      `clone ${volumeId} to finish provisioning before it is deleted`,
      c.cfg.limits.clone_timeout,
      c.signal,
    );
  for (let attempt = 1; v.lifecycleState !== "TERMINATING"; attempt++) {
    try {
      await c.api.deleteVolume(volumeId);
      break;
    } catch (err) {
      if (!isIncorrectState(err) || attempt > 2) throw err;
      // a retried delete that went through answers 409 too; a clone still provisioning may not be deletable yet
      const now = await state();
      if (!now || ["TERMINATING", "TERMINATED"].includes(now.lifecycleState)) break;
      if (!["PROVISIONING", "RESTORING"].includes(now.lifecycleState)) throw err;
      await notProvisioning();
    }
  }
  await pollFor(
    async () => {
      const now = await state();
      return !now || now.lifecycleState === "TERMINATED" ? true : undefined;
    },
    `clone ${volumeId} to become TERMINATED`,
    c.cfg.limits.lifecycle_timeout,
    c.signal,
  );
}
