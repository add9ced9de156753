/**
 * One backup made reachable for a drill: clone → attach → mount → find PGDATA, and the
 * reverse (unmount → detach → delete) on every path. A failed prepare undoes its own work
 * before it throws; the drill disposes a successful one after the sandbox is gone.
 */
import { basename, join } from "node:path";
import { type DrillPlan, type DrillResource, detailOf } from "../../model.js";
import { describeError, VerifierError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { processStartTime } from "../../util/os-user.js";
import type { PrepareContext, PreparedDataDir, PrepareRecord } from "../source.js";
import {
  assertClone,
  attachClone,
  type CloneApi,
  createClone,
  deleteClone,
  detachClone,
  ownerTags,
  RUN_TAG,
  waitAttached,
  waitAvailable,
} from "./clone-lifecycle.js";
import type { CloneLimits } from "./clone-limits.js";
import {
  ensureMountRoot,
  findDataDir,
  type MountOwner,
  mountDevice,
  removeMountPoint,
  unmount,
  waitForDevice,
  writeMountOwner,
} from "./host-mount.js";
import { type IscsiTarget, iscsiLogin, iscsiLogout, iscsiTargetOf } from "./iscsi-session.js";
import { listAll, type OciApi } from "./oci-api.js";
import type { RetryContext } from "./oci-retry.js";
import type { OciVolumeBackupsSourceConfig } from "./oci-volume-config.js";

/** What a clone session needs from its source. */
export interface CloneSessionDeps {
  cfg: OciVolumeBackupsSourceConfig;
  /** The API with retries, logging to `ctx.logger` and stopped by `ctx.signal`. */
  api(ctx: RetryContext): Promise<OciApi>;
  limits: CloneLimits;
  /** A number unique within this source instance, for names. */
  nextIndex(): number;
}

/** What exists right now, so teardown undoes exactly that. */
interface Live {
  name: string;
  createAttempted: boolean;
  volumeId?: string;
  attachmentId?: string;
  iscsi?: IscsiTarget;
  mountPoint?: string;
}

/** Clones, attaches and mounts `plan.backup`; returns its data directory and how to release it. */
export async function prepareClone(
  plan: DrillPlan,
  ctx: PrepareContext,
  deps: CloneSessionDeps,
): Promise<PreparedDataDir> {
  const { cfg } = deps;
  const { logger } = ctx;
  const b = plan.backup;
  const record: PrepareRecord = ctx.record ?? { phases: {}, resources: [] };
  const index = deps.nextIndex();
  const live: Live = { name: `attest-${ctx.runId}-${index}`, createAttempted: false };
  const facts = detailOf(b, "oci-volume");
  const sizeGb = facts?.sizeGb ?? 0;
  // before anything is created: what cannot work fails the drill here
  if (cfg.verifier.attach === "iscsi" && cfg.oci.endpoint) {
    throw new VerifierError("iSCSI login is never performed against an emulator endpoint (oci.endpoint)");
  }
  ensureMountRoot(cfg.verifier.mount_root);
  const release = await deps.limits.acquire(sizeGb, `backup ${b.id}`, ctx.signal);
  let teardown: Promise<Record<string, number>> | undefined;
  const dispose = () => {
    teardown ??= releaseClone(live, record, deps, logger).finally(release);
    return teardown;
  };

  const notes: string[] = [];
  try {
    const c: CloneApi = {
      api: await deps.api({ logger, ...(ctx.signal ? { signal: ctx.signal } : {}) }),
      cfg,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    };
    let t = Date.now();
    logger.info("cloning volume backup", { source: cfg.name, backup: b.id, clone: live.name });
    live.createAttempted = true;
    const volume = await createClone(c, b.id, live.name, ownerTags(ctx.runId, cfg.name));
    live.volumeId = volume.id;
    addResource(record, "volume", volume.id);
    await waitAvailable(c, volume.id, b.id);
    record.phases.clone = Date.now() - t;

    t = Date.now();
    const attachment = await attachClone(c, volume.id, live.name);
    live.attachmentId = attachment.id;
    addResource(record, "volume-attachment", attachment.id);
    const attached = await waitAttached(c, attachment.id);
    if (cfg.verifier.attach === "iscsi") {
      live.iscsi = iscsiTargetOf(attached);
      await iscsiLogin(live.iscsi);
      addResource(record, "iscsi-session", live.iscsi.iqn);
    }
    if (!attached.device) throw new VerifierError(`attachment ${attachment.id} has no device path`);
    const devicePath = join(cfg.verifier.device_root, basename(attached.device));
    const device = await waitForDevice(devicePath, cfg.verifier.device_timeout, ctx.signal);
    record.phases.attach = Date.now() - t;

    t = Date.now();
    const mountPoint = join(cfg.verifier.mount_root, `${ctx.runId}-${index}`);
    live.mountPoint = mountPoint;
    writeMountOwner(ownerRecord(ctx.runId, cfg.name, b.id, live, mountPoint));
    await mountDevice(device, mountPoint, cfg.verifier.mount_options, ctx.signal);
    addResource(record, "mount", mountPoint);
    const found = findDataDir(mountPoint, cfg.verifier.data_subdir);
    record.phases.mount = Date.now() - t;
    notes.push(
      `cloned ${facts?.displayName ?? b.id} into volume ${volume.id}, attached ${cfg.verifier.attach} at ${attached.device}, ` +
        `PGDATA at ${found.subdir ? `${found.subdir}/` : "the root"} on the clone (PostgreSQL ${found.pgMajor})`,
    );
    logger.info("clone mounted", {
      source: cfg.name,
      backup: b.id,
      volume: volume.id,
      dataDir: found.dataDir,
      phases: record.phases,
    });

    const prepared: PreparedDataDir = {
      dataDir: found.dataDir,
      pgMajor: found.pgMajor,
      notes,
      phases: record.phases,
      resources: record.resources,
      dispose: async () => ({ phases: await dispose() }),
      [Symbol.asyncDispose]: async () => {
        await dispose();
      },
    };
    return prepared;
  } catch (err) {
    await dispose().catch((cleanupErr: unknown) => {
      logger.error("cleanup after a failed prepare failed; the next run sweeps what is left", {
        source: cfg.name,
        backup: b.id,
        error: describeError(cleanupErr),
      });
    });
    throw err;
  }
}

function ownerRecord(
  run: string,
  source: string,
  backupId: string,
  live: Live,
  mountPoint: string,
): MountOwner {
  const tags = ownerTags(run, source);
  const pidStart = processStartTime(process.pid);
  return {
    run,
    host: tags["attest-host"]!,
    pid: process.pid,
    ...(pidStart ? { pidStart } : {}),
    source,
    backupId,
    volumeId: live.volumeId!,
    ...(live.attachmentId ? { attachmentId: live.attachmentId } : {}),
    ...(live.iscsi ? { iscsi: live.iscsi } : {}),
    mountPoint,
    started: new Date().toISOString(),
  };
}

function addResource(record: PrepareRecord, kind: string, id: string): void {
  record.resources.push({ kind, id, created: true, deleted: false });
}

function markDeleted(record: PrepareRecord, kind: string, id: string): void {
  const r: DrillResource | undefined = record.resources.find((x) => x.kind === kind && x.id === id);
  if (r) r.deleted = true;
}

/**
 * Unmounts, logs out, detaches every attachment of the clone on the verifier, deletes the
 * clone. A step that fails stops the ones that depend on it (no detach under a mounted
 * filesystem); whatever remains is swept by a later run.
 */
async function releaseClone(
  live: Live,
  record: PrepareRecord,
  deps: CloneSessionDeps,
  logger: Logger,
): Promise<Record<string, number>> {
  const { cfg } = deps;
  const phases: Record<string, number> = {};
  const errors: string[] = [];
  const step = async (phase: string, fn: () => Promise<void>): Promise<boolean> => {
    const t = Date.now();
    try {
      await fn();
      return true;
    } catch (err) {
      errors.push(`${phase}: ${describeError(err)}`);
      logger.error(`clone cleanup step ${phase} failed`, { clone: live.name, error: describeError(err) });
      return false;
    } finally {
      phases[phase] = Date.now() - t;
      record.phases[phase] = phases[phase];
    }
  };
  // the drill's signal may be aborted already: cleanup runs on its own time limits
  const c: CloneApi = { api: await deps.api({ logger }), cfg };

  let unmounted = true;
  const mountPoint = live.mountPoint;
  if (mountPoint) {
    unmounted = await step("unmount", async () => {
      const how = await unmount(mountPoint, logger);
      await removeMountPoint(mountPoint);
      if (how !== "not-mounted") markDeleted(record, "mount", mountPoint);
    });
  }

  if (!live.volumeId && live.createAttempted) {
    // CreateVolume may have gone through without its answer reaching us: find it by name and tag
    await step("find", async () => {
      const compartmentId = cfg.clone_compartment_id ?? cfg.compartment_id;
      const found = await listAll((page) =>
        c.api.listVolumes({ compartmentId, displayName: live.name, ...(page ? { page } : {}) }),
      );
      const ours = found.find(
        (v) => v.freeformTags?.[RUN_TAG] && !["TERMINATED", "TERMINATING"].includes(v.lifecycleState),
      );
      if (ours) {
        assertClone(ours, cfg);
        live.volumeId = ours.id;
        addResource(record, "volume", ours.id);
      }
    });
  }
  if (!unmounted || !live.volumeId) return finish(phases, errors, live);
  const volumeId = live.volumeId;

  const detached = await step("detach", async () => {
    if (live.iscsi) {
      await iscsiLogout(live.iscsi);
      markDeleted(record, "iscsi-session", live.iscsi.iqn);
    }
    const listed = await listAll((page) =>
      c.api.listVolumeAttachments({
        compartmentId: cfg.verifier.compartment_id ?? cfg.compartment_id,
        instanceId: cfg.verifier.instance_id,
        volumeId,
        ...(page ? { page } : {}),
      }),
    );
    const ids = new Set([
      ...(live.attachmentId ? [live.attachmentId] : []),
      ...listed.filter((a) => a.lifecycleState !== "DETACHED").map((a) => a.id),
    ]);
    for (const id of ids) {
      await detachClone(c, id);
      markDeleted(record, "volume-attachment", id);
    }
  });
  if (detached) {
    await step("delete", async () => {
      await deleteClone(c, volumeId);
      markDeleted(record, "volume", volumeId);
    });
  }
  return finish(phases, errors, live);
}

function finish(phases: Record<string, number>, errors: string[], live: Live): Record<string, number> {
  if (errors.length) {
    throw new VerifierError(
      `cleanup of clone ${live.volumeId ?? live.name} incomplete: ${errors.join("; ")}`,
    );
  }
  return phases;
}
