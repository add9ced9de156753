/**
 * The `barman-cloud` source: backups barman-cloud-backup (CloudNativePG's backup tool) wrote to an
 * object store, read through the storage layer: each `base/<id>/backup.info`, and the `wals/`
 * listing for static WAL continuity. DONE backups are backups; FAILED and unfinished ones are findings.
 */
import type { Backup, BarmanDetail, DrillPlan, Finding, WalArchiveFacts } from "../../model.js";
import type { Restorer } from "../../restore/restorer.js";
import { BarmanCloudRestorer } from "../../restore/tool/barman-cloud-restorer.js";
import { createStorage } from "../../storage/create-storage.js";
import type { Storage } from "../../storage/storage.js";
import { describeError, VerifierError } from "../../util/errors.js";
import type { WalArchive } from "../../wal/wal-archive.js";
import type { BackupWalNeed } from "../../wal/wal-continuity.js";
import { archiveEndOn } from "../../wal/wal-continuity.js";
import { inspectWal } from "../../wal/wal-findings.js";
import { DEFAULT_WAL_SEGMENT_SIZE, parseLsn, segmentOfLsn } from "../../wal/wal-names.js";
import { planPhysical } from "../basebackup/pitr-plan.js";
import type { Source, SourceContext } from "../source.js";
import { type BarmanCloudBackupInfo, parseBackupInfo } from "./backup-info.js";
import type { BarmanCloudSourceConfig } from "./barman-cloud-config.js";
import { readCloudWalArchive, readWhole } from "./cloud-wal-archive.js";

/** Replaceable parts, for tests. */
export interface BarmanCloudSourceDeps {
  random?: () => number;
}

/**
 * Barman's own backup id shape (YYYYMMDDTHHMMSS). barman-cloud-restore reads any other id as a
 * backup *name* and restores whichever backup carries it, so a `base/<other>/backup.info` would be
 * drilled as the bytes of another backup (S3-8): such entries are findings, never backups.
 */
export const BARMAN_BACKUP_ID = /^\d{8}T\d{6}$/;

/** The key prefix of a server: `<path>/<server_name>/`. */
export function serverPrefix(cfg: Pick<BarmanCloudSourceConfig, "path" | "server_name">): string {
  const path = cfg.path.replace(/\/+$/, "");
  return `${path ? `${path}/` : ""}${cfg.server_name}/`;
}

/** Lists barman-cloud backups and inspects their WAL from the bucket (read-only calls only). */
export class BarmanCloudSource implements Source {
  readonly type = "barman-cloud";
  readonly name: string;
  readonly #cfg: BarmanCloudSourceConfig;
  readonly #random: () => number;
  #findings: Finding[] = [];
  #archive: WalArchive | undefined;

  constructor(cfg: BarmanCloudSourceConfig, deps: BarmanCloudSourceDeps = {}) {
    this.#cfg = Object.freeze({ ...cfg });
    this.name = cfg.name;
    this.#random = deps.random ?? Math.random;
  }

  async #withStorage<T>(fn: (s: Storage) => Promise<T>): Promise<T> {
    const { name, config } = this.#cfg.storage;
    if (!config) throw new VerifierError(`storage "${name}" is not configured under storage:`);
    const storage = await createStorage(name, config);
    try {
      return await fn(storage);
    } finally {
      storage.close();
    }
  }

  restorer(_backup: Backup): Restorer {
    const cfg = this.#cfg;
    const store = cfg.storage.config;
    if (store?.type !== "s3")
      throw new VerifierError(
        `barman-cloud source ${cfg.name}: storage ${cfg.storage.name} is not an s3 store`,
      );
    return new BarmanCloudRestorer({
      store,
      path: cfg.path,
      serverName: cfg.server_name,
      superuser: cfg.superuser,
    });
  }

  async list(ctx: SourceContext): Promise<Backup[]> {
    this.#findings = [];
    const prefix = serverPrefix(this.#cfg);
    const signal = ctx.signal;
    return this.#withStorage(async (storage) => {
      // one listing of base/: the backup.info of each backup and the bytes of its objects
      const sizes = new Map<string, number>();
      const infos: string[] = [];
      for await (const o of storage.list(`${prefix}base/`, signal ? { signal } : {})) {
        const m = /^([^/]+)\/(.+)$/.exec(o.key.slice(prefix.length + "base/".length));
        if (!m) continue;
        sizes.set(m[1]!, (sizes.get(m[1]!) ?? 0) + o.sizeBytes);
        if (m[2] === "backup.info") infos.push(m[1]!);
      }
      const parsed: BarmanCloudBackupInfo[] = [];
      for (const id of infos) {
        if (signal?.aborted) break;
        const key = `${prefix}base/${id}/backup.info`;
        if (!BARMAN_BACKUP_ID.test(id)) {
          this.#finding(
            "backup_unreadable",
            "critical",
            `${storage.describe(key)}: ${JSON.stringify(id)} is not a barman backup id (YYYYMMDDTHHMMSS); barman-cloud-restore would read it as a backup name and restore another backup, so it is not drilled`,
          );
          continue;
        }
        try {
          const info = parseBackupInfo((await readWhole(storage, key, signal)).toString("utf8"), id);
          if (info.declaredId !== undefined && info.declaredId !== id) {
            this.#finding(
              "backup_unreadable",
              "critical",
              `${storage.describe(key)}: its backup_id ${JSON.stringify(info.declaredId)} is not its directory's ${id}; not a barman backup id it can be restored by, so it is not drilled`,
              id,
            );
            continue;
          }
          parsed.push(info);
        } catch (err) {
          this.#finding(
            "backup_unreadable",
            "warning",
            `${storage.describe(key)}: ${describeError(err)}`,
            id,
          );
        }
      }
      const segSize =
        parsed.find((b) => b.status === "DONE" && b.walSegmentSize)?.walSegmentSize ??
        DEFAULT_WAL_SEGMENT_SIZE;
      this.#archive = await readCloudWalArchive(storage, `${prefix}wals/`, segSize, signal);
      const backups: Backup[] = [];
      for (const info of parsed) {
        if (info.status !== "DONE") {
          const failed = info.status === "FAILED";
          this.#finding(
            failed ? "backup_failed" : "backup_incomplete",
            failed ? "critical" : "warning",
            `barman-cloud backup ${info.backupId} of server ${this.#cfg.server_name} is ${info.status}${info.error ? `: ${info.error}` : ""}`,
            info.backupId,
          );
          continue;
        }
        const b = this.#record(info, sizes.get(info.backupId) ?? 0, storage);
        if (b) backups.push(b);
      }
      return backups.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    });
  }

  #record(info: BarmanCloudBackupInfo, bytes: number, storage: Storage): Backup | undefined {
    if (!info.endTime || !info.beginXlog || !info.beginWal) {
      this.#finding(
        "backup_unreadable",
        "warning",
        `barman-cloud backup ${info.backupId} is DONE but its backup.info lacks end_time, begin_xlog or begin_wal`,
        info.backupId,
      );
      return undefined;
    }
    const timeline = info.timeline ?? Number.parseInt(info.beginWal.slice(0, 8), 16);
    const labels: Record<string, string> = {
      tool: "barman-cloud",
      serverName: this.#cfg.server_name,
    };
    const detail: BarmanDetail = {
      kind: "barman-cloud",
      walSegmentSize: info.walSegmentSize ?? DEFAULT_WAL_SEGMENT_SIZE,
      tablespaces: info.tablespaces,
    };
    if (info.beginTime) labels.startTime = info.beginTime;
    if (info.systemId) labels.systemIdentifier = info.systemId;
    if (info.compression) labels.compression = info.compression;
    // a WAL archive makes the PITR planner target the archive's end and sample times
    const walArchive: WalArchiveFacts = { location: storage.describe(`${serverPrefix(this.#cfg)}wals/`) };
    const end = this.#archive ? archiveEndOn(this.#archive.index, timeline) : undefined;
    if (end) {
      detail.walLast = end.name;
      const at = this.#archive?.mtimeOf(this.#archive.index.files.get(timeline)?.get(end.segNo) ?? end.name);
      if (at) walArchive.end = { time: at.toISOString(), from: `upload time of ${end.name}` };
    }
    return {
      source: this.name,
      id: info.backupId,
      series: this.#cfg.server_name,
      family: "physical",
      format: `barman-cloud${info.compression ? `-${info.compression}` : ""}`,
      createdAt: info.endTime,
      createdAtOrigin: "catalog",
      sizeBytes: info.size ?? bytes,
      ...(info.version ? { pgMajor: Math.floor(info.version / 10_000) } : {}),
      location: storage.describe(`${serverPrefix(this.#cfg)}base/${info.backupId}/`),
      walRange: {
        timeline,
        startLsn: info.beginXlog,
        ...(info.endXlog ? { stopLsn: info.endXlog } : {}),
        startWal: info.beginWal,
        ...(info.endWal ? { stopWal: info.endWal } : {}),
      },
      walArchive,
      detail,
      labels,
    };
  }

  #finding(kind: string, severity: Finding["severity"], message: string, backupId?: string): void {
    this.#findings.push({
      source: this.name,
      series: this.#cfg.server_name,
      ...(backupId ? { backupId } : {}),
      kind,
      severity,
      message,
    });
  }

  async inspect(backups: readonly Backup[], ctx: SourceContext): Promise<Finding[]> {
    if (!this.#archive) await this.list(ctx);
    const archive = this.#archive;
    const findings = [...this.#findings];
    if (!archive) return findings;
    const segSize = archive.index.segSize;
    const needs: BackupWalNeed[] = backups.flatMap((b) =>
      b.walRange
        ? [
            {
              id: b.id,
              tli: b.walRange.timeline,
              startSeg: segmentOfLsn(parseLsn(b.walRange.startLsn), segSize),
              ...(b.walRange.stopLsn
                ? { stopSeg: segmentOfLsn(parseLsn(b.walRange.stopLsn) - 1n, segSize) }
                : {}),
              consistentAt: b.createdAt,
            },
          ]
        : [],
    );
    const result = inspectWal(archive, needs, {
      source: this.name,
      series: this.#cfg.server_name,
      now: new Date(),
      stallWarningMs: this.#cfg.wal_stall.warning,
      stallCriticalMs: this.#cfg.wal_stall.critical,
    });
    return [...findings, ...result.findings];
  }

  plan(rule: string, backups: readonly Backup[], now: Date): DrillPlan[] | undefined {
    return planPhysical(rule, backups, now, this.#random, {
      ...(this.#archive ? { histories: this.#archive.histories } : {}),
    });
  }
}
