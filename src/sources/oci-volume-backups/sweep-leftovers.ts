/**
 * Sweeps what dead runs left: mounts under mount_root whose owner process is gone, then
 * clones (and their attachments on the verifier) tagged by a run that is gone — same host and
 * its process not alive, or created more than 24 hours ago. Only attest-tagged clones are
 * touched; a clone attached to another instance is left alone and reported.
 */
import { existsSync, realpathSync } from "node:fs";
import { hostname } from "node:os";
import { basename, join } from "node:path";
import { formatDuration } from "../../util/duration.js";
import { describeError, VerifierError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { processAlive } from "../../util/os-user.js";
import type { SourceContext, SourceSweepReport } from "../source.js";
import { type CloneApi, deleteClone, detachClone, RUN_TAG } from "./clone-lifecycle.js";
import { mountTargetsOf, readMountOwners, removeMountPoint, unmount } from "./host-mount.js";
import { iscsiLogout } from "./iscsi-session.js";
import { listAll, type OciApi, type OciVolume } from "./oci-api.js";
import type { RetryContext } from "./oci-retry.js";
import type { OciVolumeBackupsSourceConfig } from "./oci-volume-config.js";

/** A clone older than this is a leftover whoever made it (no drill runs that long). */
export const STALE_AFTER_MS = 24 * 3_600_000;

/** Whether the run that made `v` is gone, and why. */
export function leftoverVerdict(
  v: OciVolume,
  now: number,
  host = hostname(),
): { dead: boolean; why: string } {
  const tags = v.freeformTags ?? {};
  const age = now - Date.parse(String(v.timeCreated));
  if (age > STALE_AFTER_MS) return { dead: true, why: `created ${formatDuration(age)} ago` };
  if (tags["attest-host"] !== host) {
    return { dead: false, why: `made on host ${tags["attest-host"] ?? "?"} less than 24h ago` };
  }
  const pid = Number(tags["attest-pid"]);
  if (!Number.isInteger(pid) || pid <= 0) return { dead: true, why: "no owner process recorded" };
  if (processAlive(pid, tags["attest-pid-start"] || undefined)) {
    return { dead: false, why: `process ${pid} is still running` };
  }
  return { dead: true, why: `process ${pid} on this host is gone` };
}

/** Removes leftovers of dead runs. Failures are logged and reported as kept, never thrown. */
export async function sweepLeftovers(
  deps: { cfg: OciVolumeBackupsSourceConfig; api(ctx: RetryContext): Promise<OciApi> },
  ctx: SourceContext,
): Promise<SourceSweepReport> {
  const { cfg } = deps;
  const { logger } = ctx;
  const report: SourceSweepReport = { removed: [], kept: [] };
  const host = hostname();

  for (const { file, owner } of readMountOwners(cfg.verifier.mount_root)) {
    const mountPoint = owner?.mountPoint ?? file.replace(/\.owner\.json$/, "");
    if (owner && owner.host === host && processAlive(owner.pid, owner.pidStart)) {
      report.kept.push(`mount ${mountPoint} (run ${owner.run} is still running)`);
      continue;
    }
    try {
      await unmount(mountPoint, logger);
      if (owner?.iscsi && !cfg.oci.endpoint) await iscsiLogout(owner.iscsi);
      await removeMountPoint(mountPoint);
      report.removed.push(`mount ${mountPoint} (run ${owner?.run ?? "unknown"})`);
      logger.info("removed leftover mount", { source: cfg.name, mountPoint, run: owner?.run });
    } catch (err) {
      logger.warn("could not remove leftover mount", {
        source: cfg.name,
        mountPoint,
        error: describeError(err),
      });
      report.kept.push(`mount ${mountPoint}: ${describeError(err)}`);
    }
  }

  const api = await deps.api({ logger, ...(ctx.signal ? { signal: ctx.signal } : {}) });
  const c: CloneApi = { api, cfg, ...(ctx.signal ? { signal: ctx.signal } : {}) };
  const compartmentId = cfg.clone_compartment_id ?? cfg.compartment_id;
  const volumes = await listAll((page) => api.listVolumes({ compartmentId, ...(page ? { page } : {}) }));
  const now = Date.now();
  for (const v of volumes) {
    const run = v.freeformTags?.[RUN_TAG];
    if (!run || v.id === cfg.volume_id || ["TERMINATING", "TERMINATED"].includes(v.lifecycleState)) continue;
    const { dead, why } = leftoverVerdict(v, now, host);
    const what = `volume ${v.id} (run ${run}, ${why})`;
    if (!dead) {
      report.kept.push(what);
      continue;
    }
    try {
      await releaseLeftover(c, v, logger);
      report.removed.push(what);
      logger.info("removed leftover clone", { source: cfg.name, volume: v.id, run, why });
    } catch (err) {
      logger.warn("could not remove leftover clone", {
        source: cfg.name,
        volume: v.id,
        error: describeError(err),
      });
      report.kept.push(`${what}: ${describeError(err)}`);
    }
  }
  return report;
}

/** Detaches a leftover clone from the verifier (unmounting it first when its mount record was lost), deletes it. */
async function releaseLeftover(c: CloneApi, v: OciVolume, logger: Logger): Promise<void> {
  const { cfg } = c;
  const attachments = (
    await listAll((page) =>
      c.api.listVolumeAttachments({
        compartmentId: cfg.verifier.compartment_id ?? cfg.compartment_id,
        volumeId: v.id,
        ...(page ? { page } : {}),
      }),
    )
  ).filter((a) => a.lifecycleState !== "DETACHED");
  const elsewhere = attachments.find((a) => a.instanceId !== cfg.verifier.instance_id);
  if (elsewhere)
    throw new VerifierError(`attached to instance ${elsewhere.instanceId}, not the verifier: left alone`);
  for (const a of attachments) {
    const link = a.device ? join(cfg.verifier.device_root, basename(a.device)) : undefined;
    if (link && existsSync(link)) {
      for (const target of await mountTargetsOf(realpathSync(link))) {
        if (!target.startsWith(`${cfg.verifier.mount_root}/`))
          throw new VerifierError(`its device is mounted at ${target}, outside mount_root: left alone`);
        await unmount(target, logger);
        await removeMountPoint(target);
      }
    }
    await detachClone(c, a.id);
  }
  await deleteClone(c, v.id);
}
