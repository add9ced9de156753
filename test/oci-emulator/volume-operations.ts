/** Block Storage operations: volume backups and volumes (clone from a backup, delete, list). */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { copyImage } from "./host-devices.js";
import {
  etagOf,
  incorrectState,
  invalidParameter,
  newOcid,
  OciApiError,
  paginate,
  sortResources,
} from "./http-io.js";
import { backupJson, type VolumeRecord, volumeJson } from "./resources.js";
import {
  bodyObject,
  type EmulatorCore,
  filterByQuery,
  optionalString,
  optionalTags,
  type RequestContext,
  type Route,
  requiredQuery,
  requiredString,
} from "./routing.js";

/** Routes of the volume backup and volume operations. */
export function createVolumeRoutes(core: EmulatorCore): Route[] {
  const { store } = core;
  // Image copies still running, so that a delete never races a copy.
  const copies = new Map<string, Promise<void>>();

  const single = (body: Record<string, unknown>) => ({ status: 200, body, headers: { etag: etagOf(body) } });

  function createVolume(ctx: RequestContext) {
    const body = bodyObject(ctx.body);
    const token = ctx.headers["opc-retry-token"];
    const earlier = typeof token === "string" ? store.createTokens.get(token) : undefined;
    if (earlier) return single(volumeJson(store.volume(earlier)));
    const compartmentId = requiredString(body, "compartmentId");
    const availabilityDomain = requiredString(body, "availabilityDomain");
    const source = bodyObject(body["sourceDetails"] ?? { type: "volumeBackup", id: body["volumeBackupId"] });
    if (source["type"] !== "volumeBackup") {
      throw invalidParameter(`unsupported sourceDetails.type: ${String(source["type"])}`);
    }
    const backup = store.backup(requiredString(source, "id"));
    if (backup.lifecycleState !== "AVAILABLE") {
      throw incorrectState(`volume backup ${backup.id} is ${backup.lifecycleState}`);
    }
    const size = body["sizeInGBs"] ?? backup.sizeInGBs;
    if (typeof size !== "number" || size < backup.sizeInGBs) {
      throw invalidParameter(`sizeInGBs must be at least the backup's ${backup.sizeInGBs}`);
    }
    const volume: VolumeRecord = {
      id: newOcid("volume", store.region),
      compartmentId,
      availabilityDomain,
      displayName: optionalString(body, "displayName") ?? `volume${Date.now()}`,
      sizeInGBs: size,
      timeCreated: new Date().toISOString(),
      lifecycleState: "PROVISIONING",
      isHydrated: false,
      freeformTags: optionalTags<string>(body, "freeformTags"),
      definedTags: optionalTags<Record<string, unknown>>(body, "definedTags"),
      sourceBackupId: backup.id,
      imagePath: undefined,
    };
    store.volumes.set(volume.id, volume);
    if (typeof token === "string") store.createTokens.set(token, volume.id);

    const faulty = core.settings.cloneOutcome === "faulty";
    const target = join(core.stateDir, "volumes", `${volume.id}.img`);
    const copied = backup.imagePath && !faulty ? copyImage(backup.imagePath, target) : Promise.resolve();
    copies.set(
      volume.id,
      copied.catch(() => undefined),
    );
    core.tasks.run(`copy image of ${backup.id}`, () => copied);
    const delay = core.settings.delays.provisionMs * core.settings.hydrationFactor;
    core.tasks.after(delay, `provision volume ${volume.id}`, async () => {
      // A failed copy was already recorded as a problem by its own task; the clone is FAULTY.
      const copyFailed = await copied.then(
        () => false,
        () => true,
      );
      if (volume.lifecycleState !== "PROVISIONING") return;
      if (copyFailed) {
        volume.lifecycleState = "FAULTY";
        return;
      }
      volume.lifecycleState = faulty ? "FAULTY" : "AVAILABLE";
      volume.isHydrated = !faulty;
      if (backup.imagePath && !faulty) volume.imagePath = target;
    });
    return single(volumeJson(volume));
  }

  async function deleteVolume(ctx: RequestContext) {
    const volume = store.volume(ctx.params[0]!);
    const ifMatch = ctx.headers["if-match"];
    if (ifMatch && ifMatch !== etagOf(volumeJson(volume))) {
      throw new OciApiError(412, "NoEtagMatch", "the if-match etag does not match the volume");
    }
    if (volume.lifecycleState === "TERMINATING" || volume.lifecycleState === "TERMINATED") {
      throw incorrectState(`volume ${volume.id} is already ${volume.lifecycleState}`);
    }
    if (store.liveAttachments().some((a) => a.volumeId === volume.id)) {
      throw new OciApiError(409, "Conflict", `volume ${volume.id} is attached; detach it first`);
    }
    volume.lifecycleState = "TERMINATING";
    core.tasks.after(core.settings.delays.terminateMs, `terminate volume ${volume.id}`, async () => {
      await copies.get(volume.id);
      await rm(join(core.stateDir, "volumes", `${volume.id}.img`), { force: true });
      copies.delete(volume.id);
      volume.imagePath = undefined;
      volume.lifecycleState = "TERMINATED";
      // no retention: gone in the same step, so no GET can see a TERMINATED state in between
      if (core.settings.delays.terminatedRetentionMs <= 0) store.volumes.delete(volume.id);
      else
        core.tasks.after(core.settings.delays.terminatedRetentionMs, `forget volume ${volume.id}`, () => {
          store.volumes.delete(volume.id);
        });
    });
    return { status: 204 };
  }

  return [
    {
      method: "GET",
      pattern: /^\/volumeBackups\/?$/,
      operation: "ListVolumeBackups",
      handle: ({ query }) => {
        const compartmentId = requiredQuery(query, "compartmentId");
        const all = [...store.backups.values()].filter((b) => b.compartmentId === compartmentId);
        const matching = filterByQuery(all, query, ["volumeId", "displayName", "lifecycleState"]);
        return paginate(sortResources(matching, query).map(backupJson), query);
      },
    },
    {
      method: "GET",
      pattern: /^\/volumeBackups\/([^/]+)$/,
      operation: "GetVolumeBackup",
      handle: ({ params }) => single(backupJson(store.backup(params[0]!))),
    },
    { method: "POST", pattern: /^\/volumes\/?$/, operation: "CreateVolume", handle: createVolume },
    {
      method: "GET",
      pattern: /^\/volumes\/?$/,
      operation: "ListVolumes",
      handle: ({ query }) => {
        const compartmentId = requiredQuery(query, "compartmentId");
        const all = [...store.volumes.values()].filter((v) => v.compartmentId === compartmentId);
        const matching = filterByQuery(all, query, ["availabilityDomain", "displayName", "lifecycleState"]);
        return paginate(sortResources(matching, query).map(volumeJson), query);
      },
    },
    {
      method: "GET",
      pattern: /^\/volumes\/([^/]+)$/,
      operation: "GetVolume",
      handle: ({ params }) => single(volumeJson(store.volume(params[0]!))),
    },
    { method: "DELETE", pattern: /^\/volumes\/([^/]+)$/, operation: "DeleteVolume", handle: deleteVolume },
  ];
}
