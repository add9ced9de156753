/** Compute operations: attach / detach volumes (as loop devices) and list an instance's devices. */
import { basename, join } from "node:path";
import { linkDevice, mountTargets, unlinkDevice } from "./host-devices.js";
import {
  etagOf,
  incorrectState,
  invalidParameter,
  newOcid,
  OciApiError,
  paginate,
  sortResources,
} from "./http-io.js";
import { type AttachmentRecord, attachmentJson } from "./resources.js";
import {
  bodyObject,
  type EmulatorCore,
  filterByQuery,
  optionalString,
  type RequestContext,
  type Route,
  requiredQuery,
  requiredString,
} from "./routing.js";
import { DEVICE_NAMES } from "./store.js";
import { ATTACHMENT_TYPES, type AttachmentType } from "./types.js";

/** Routes of the volume attachment and instance device operations. */
export function createAttachmentRoutes(core: EmulatorCore): Route[] {
  const { store } = core;
  const workRequest = () => ({ "opc-work-request-id": newOcid("coreservicesworkrequest", store.region) });
  const devicesInUse = (instanceId: string) =>
    new Set(
      store.liveAttachments().flatMap((a) => (a.instanceId === instanceId && a.device ? [a.device] : [])),
    );

  function attachVolume(ctx: RequestContext) {
    const body = bodyObject(ctx.body);
    const type = requiredString(body, "type");
    if (!(ATTACHMENT_TYPES as readonly string[]).includes(type)) {
      throw invalidParameter(`unsupported attachment type: ${type}`);
    }
    const instance = store.instance(requiredString(body, "instanceId"));
    const volume = store.volume(requiredString(body, "volumeId"));
    if (volume.lifecycleState !== "AVAILABLE")
      throw incorrectState(`volume ${volume.id} is ${volume.lifecycleState}`);
    if (volume.availabilityDomain !== instance.availabilityDomain) {
      throw invalidParameter("the volume and the instance must be in the same availability domain");
    }
    if (store.liveAttachments().some((a) => a.volumeId === volume.id)) {
      throw new OciApiError(409, "Conflict", `volume ${volume.id} is already attached`);
    }
    const device = optionalString(body, "device");
    if (device !== undefined && !DEVICE_NAMES.includes(device))
      throw invalidParameter(`unknown device: ${device}`);
    if (device !== undefined && devicesInUse(instance.id).has(device)) {
      throw new OciApiError(409, "Conflict", `device ${device} is in use on instance ${instance.id}`);
    }
    const attachment: AttachmentRecord = {
      id: newOcid("volumeattachment", store.region),
      attachmentType: type as AttachmentType,
      compartmentId: instance.compartmentId,
      availabilityDomain: instance.availabilityDomain,
      instanceId: instance.id,
      volumeId: volume.id,
      device,
      displayName: optionalString(body, "displayName") ?? `volumeattachment${Date.now()}`,
      isReadOnly: body["isReadOnly"] === true,
      isShareable: body["isShareable"] === true,
      lifecycleState: "ATTACHING",
      timeCreated: new Date().toISOString(),
      loopDevice: undefined,
      hostPath: undefined,
    };
    store.attachments.set(attachment.id, attachment);
    core.tasks.after(core.settings.delays.attachMs, `attach ${volume.id}`, async () => {
      try {
        // Volumes without an image (API-only tests) attach without a host device.
        if (volume.imagePath) {
          attachment.loopDevice = await core.loops.bind(volume.imagePath, attachment.isReadOnly);
          if (device) {
            attachment.hostPath = join(core.deviceRoot, basename(device));
            await linkDevice(attachment.hostPath, attachment.loopDevice);
          }
        }
        attachment.lifecycleState = "ATTACHED";
      } catch (err) {
        await releaseHostDevice(attachment);
        attachment.lifecycleState = "DETACHED";
        throw err;
      }
    });
    const json = attachmentJson(attachment);
    return { status: 200, body: json, headers: { etag: etagOf(json), ...workRequest() } };
  }

  async function releaseHostDevice(attachment: AttachmentRecord): Promise<void> {
    if (attachment.hostPath) await unlinkDevice(attachment.hostPath);
    attachment.hostPath = undefined;
    if (attachment.loopDevice) await core.loops.release(attachment.loopDevice);
    attachment.loopDevice = undefined;
  }

  function detachVolume(ctx: RequestContext) {
    const attachment = store.attachment(ctx.params[0]!);
    if (attachment.lifecycleState !== "ATTACHED") {
      throw incorrectState(`volume attachment ${attachment.id} is ${attachment.lifecycleState}`);
    }
    attachment.lifecycleState = "DETACHING";
    core.tasks.after(core.settings.delays.detachMs, `detach ${attachment.volumeId}`, async () => {
      if (attachment.loopDevice && (await mountTargets(attachment.loopDevice)).length > 0) {
        // OCI would yank the disk from under the filesystem; the caller must unmount first.
        store.problems.push(
          `volume ${attachment.volumeId} was detached while ${attachment.loopDevice} was mounted`,
        );
      }
      await releaseHostDevice(attachment);
      attachment.lifecycleState = "DETACHED";
    });
    return { status: 204, headers: workRequest() };
  }

  return [
    { method: "POST", pattern: /^\/volumeAttachments\/?$/, operation: "AttachVolume", handle: attachVolume },
    {
      method: "GET",
      pattern: /^\/volumeAttachments\/?$/,
      operation: "ListVolumeAttachments",
      handle: ({ query }) => {
        const compartmentId = requiredQuery(query, "compartmentId");
        const all = [...store.attachments.values()].filter((a) => a.compartmentId === compartmentId);
        const matching = filterByQuery(all, query, ["availabilityDomain", "instanceId", "volumeId"]);
        return paginate(sortResources(matching, new URLSearchParams()).map(attachmentJson), query);
      },
    },
    {
      method: "GET",
      pattern: /^\/volumeAttachments\/([^/]+)$/,
      operation: "GetVolumeAttachment",
      handle: ({ params }) => {
        const json = attachmentJson(store.attachment(params[0]!));
        return { status: 200, body: json, headers: { etag: etagOf(json) } };
      },
    },
    {
      method: "DELETE",
      pattern: /^\/volumeAttachments\/([^/]+)$/,
      operation: "DetachVolume",
      handle: detachVolume,
    },
    {
      method: "GET",
      pattern: /^\/instances\/([^/]+)\/devices\/?$/,
      operation: "ListInstanceDevices",
      handle: ({ params, query }) => {
        const inUse = devicesInUse(store.instance(params[0]!).id);
        const devices = DEVICE_NAMES.map((name) => ({ name, isAvailable: !inUse.has(name) }));
        return paginate(filterByQuery(devices, query, ["isAvailable", "name"]), query);
      },
    },
  ];
}
