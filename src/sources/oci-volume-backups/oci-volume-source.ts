/**
 * The `oci-volume-backups` source: OCI Block Volume backups of the volume that holds PGDATA
 * (as the pg_backup_oci script takes them). Lists and inspects them through the API, and
 * prepares a drill by cloning a backup into a volume attached to and mounted on the verifier.
 */
import { type Backup, type DrillPlan, detailOf, type Finding } from "../../model.js";
import type { Restorer } from "../../restore/restorer.js";
import { SnapshotRestorer } from "../../restore/snapshot/snapshot-restorer.js";
import type { PrepareContext, PreparedBackup, Source, SourceContext, SourceSweepReport } from "../source.js";
import { CloneLimits } from "./clone-limits.js";
import { prepareClone } from "./clone-session.js";
import { describeBackup, matchesFilters } from "./describe-backup.js";
import { inspectBackups } from "./inspect-backups.js";
import { createOciApi, listAll, type OciApi } from "./oci-api.js";
import { type RetryContext, type RetryPolicy, retryingApi } from "./oci-retry.js";
import type { OciVolumeBackupsSourceConfig } from "./oci-volume-config.js";
import { sweepLeftovers } from "./sweep-leftovers.js";

/** Lists a volume's backups and clones them for drills. */
export class OciVolumeBackupsSource implements Source {
  readonly type = "oci-volume-backups";
  readonly name: string;
  readonly #cfg: OciVolumeBackupsSourceConfig;
  readonly #policy: RetryPolicy;
  readonly #limits: CloneLimits;
  #raw: Promise<OciApi> | undefined;
  #index = 0;
  #findings: Finding[] = [];

  constructor(cfg: OciVolumeBackupsSourceConfig) {
    this.#cfg = cfg;
    this.name = cfg.name;
    const r = cfg.api_retry;
    this.#policy = Object.freeze({
      maxAttempts: r.max_attempts,
      initialDelayMs: r.initial_delay,
      maxDelayMs: r.max_delay,
      callTimeoutMs: r.call_timeout,
    });
    this.#limits = new CloneLimits(cfg.limits.max_concurrent_clones, cfg.limits.max_cloned_gb);
  }

  /** The API with retries for one context (its logger, its signal). */
  async #api(ctx: RetryContext): Promise<OciApi> {
    this.#raw ??= createOciApi(this.#cfg.oci, ctx.logger);
    try {
      return retryingApi(await this.#raw, this.#policy, ctx);
    } catch (err) {
      this.#raw = undefined;
      throw err;
    }
  }

  restorer(backup: Backup): Restorer {
    // the clone is mounted as the sandbox's data directory (no copy); a kept label only helps
    // with the WAL archive: the backup's end lies past the snapshot, in archived WAL
    const { superuser, wal_archive } = this.#cfg;
    const labelFile = detailOf(backup, "oci-volume")?.labelFile;
    return new SnapshotRestorer({
      superuser,
      ...(wal_archive ? { walArchive: wal_archive } : {}),
      ...(labelFile && wal_archive ? { backupLabel: { path: labelFile } } : {}),
    });
  }

  async list(ctx: SourceContext): Promise<Backup[]> {
    const cfg = this.#cfg;
    this.#findings = [];
    const api = await this.#api(ctx);
    const all = await listAll((page) =>
      api.listVolumeBackups({
        compartmentId: cfg.compartment_id,
        volumeId: cfg.volume_id,
        ...(page ? { page } : {}),
      }),
    );
    const found: Backup[] = [];
    for (const b of all) {
      if ((b.volumeId && b.volumeId !== cfg.volume_id) || !matchesFilters(b, cfg)) continue;
      if (b.lifecycleState === "FAULTY") {
        this.#findings.push({
          source: cfg.name,
          series: cfg.volume_id,
          backupId: b.id,
          kind: "backup_faulty",
          severity: "critical",
          message: `volume backup ${b.displayName} (${b.id}) of ${new Date(b.timeCreated).toISOString()} is FAULTY: it cannot be restored`,
        });
        continue;
      }
      if (b.lifecycleState !== "AVAILABLE") {
        ctx.logger.debug("volume backup not available, skipped", {
          source: cfg.name,
          backup: b.id,
          state: b.lifecycleState,
        });
        continue;
      }
      found.push(describeBackup(b, cfg, api.region));
    }
    return found.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async inspect(backups: readonly Backup[]): Promise<Finding[]> {
    return [...this.#findings, ...inspectBackups(backups, this.#cfg, Date.now())];
  }

  prepare(plan: DrillPlan, ctx: PrepareContext): Promise<PreparedBackup> {
    return prepareClone(plan, ctx, {
      cfg: this.#cfg,
      api: (c) => this.#api(c),
      limits: this.#limits,
      nextIndex: () => ++this.#index,
    });
  }

  sweep(ctx: SourceContext): Promise<SourceSweepReport> {
    return sweepLeftovers({ cfg: this.#cfg, api: (c) => this.#api(c) }, ctx);
  }
}
