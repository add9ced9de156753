/** The `basebackup` source: pg_basebackup output per subdirectory plus a WAL archive. */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { type Backup, type DrillPlan, detailOf, type Finding } from "../../model.js";
import { PhysicalRestorer } from "../../restore/physical/physical-restorer.js";
import { StoredPhysicalRestorer } from "../../restore/physical/stored-physical-restorer.js";
import type { Restorer } from "../../restore/restorer.js";
import { SnapshotRestorer } from "../../restore/snapshot/snapshot-restorer.js";
import { describeError } from "../../util/errors.js";
import { readWalArchive, type WalArchive } from "../../wal/wal-archive.js";
import type { BackupWalNeed } from "../../wal/wal-continuity.js";
import { latestRecoveryTimeline } from "../../wal/wal-continuity.js";
import { inspectWal } from "../../wal/wal-findings.js";
import { lastTransactionTime } from "../../wal/wal-last-commit.js";
import { parseLsn, segmentOfLsn } from "../../wal/wal-names.js";
import type { Source, SourceContext } from "../source.js";
import { backupRecord } from "./backup-record.js";
import type { BasebackupSourceConfig } from "./basebackup-config.js";
import { type DescribedBackup, describeBackupDir } from "./describe-backup.js";
import { planPhysical } from "./pitr-plan.js";
import { keyPrefix } from "./stored-basebackups.js";
import { listStoredSource, readStoredArchive, withSourceStorage } from "./stored-source.js";

/** Replaceable parts, for tests. */
export interface BasebackupSourceDeps {
  random?: () => number;
}

/** Lists base backups and inspects the WAL archive they depend on. */
export class BasebackupSource implements Source {
  readonly type = "basebackup";
  readonly name: string;
  readonly #cfg: BasebackupSourceConfig;
  readonly #random: () => number;
  #findings: Finding[] = [];
  /** Timeline histories of the archive as last listed (the planner follows them). */
  #histories: WalArchive["histories"] | undefined;
  /** A stored archive as last listed (inspect reads it again only when list did not run). */
  #storedArchive: WalArchive | undefined;

  constructor(cfg: BasebackupSourceConfig, deps: BasebackupSourceDeps = {}) {
    this.#cfg = cfg;
    this.name = cfg.name;
    this.#random = deps.random ?? Math.random;
  }

  async #archive(): Promise<WalArchive | undefined> {
    if (!this.#cfg.wal_archive) return undefined;
    if (this.#cfg.storage)
      return this.#storedArchive ?? withSourceStorage(this.#cfg, (s) => readStoredArchive(this.#cfg, s));
    return readWalArchive(this.#cfg.wal_archive, { segSize: this.#cfg.wal_segment_size });
  }

  restorer(backup: Backup): Restorer {
    const { superuser, wal_archive } = this.#cfg;
    if (this.#cfg.storage)
      return new StoredPhysicalRestorer({
        store: this.#cfg.storage,
        superuser,
        ...(wal_archive ? { walPrefix: keyPrefix(wal_archive) } : {}),
      });
    const walArchive = wal_archive ? { walArchive: wal_archive } : {};
    if (backup.family !== "snapshot") return new PhysicalRestorer({ superuser, ...walArchive });
    const layout = detailOf(backup, "basebackup")?.layout;
    const { dataDir, labelFile, tablespaceMap } = layout?.kind === "snapshot" ? layout : {};
    return new SnapshotRestorer({
      superuser,
      ...walArchive,
      ...(dataDir ? { copyFrom: dataDir } : {}),
      ...(labelFile ? { backupLabel: { path: labelFile } } : {}),
      ...(tablespaceMap ? { tablespaceMap: { path: tablespaceMap } } : {}),
    });
  }

  async list(ctx: SourceContext): Promise<Backup[]> {
    this.#findings = [];
    if (this.#cfg.storage) {
      const listed = await listStoredSource(this.#cfg, ctx);
      this.#findings = listed.findings;
      this.#storedArchive = listed.archive;
      this.#histories = listed.archive?.histories;
      return listed.backups;
    }
    const archive = await this.#archive();
    this.#histories = archive?.histories;
    const found: Backup[] = [];
    const dirs = readdirSync(this.#cfg.path, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    for (const name of dirs) {
      if (ctx.signal?.aborted) break;
      const dir = join(this.#cfg.path, name);
      let desc: DescribedBackup | undefined;
      try {
        desc = await describeBackupDir(dir);
      } catch (err) {
        this.#findings.push({
          source: this.name,
          backupId: name,
          kind: "backup_unreadable",
          severity: "warning",
          message: `${dir}: ${describeError(err)}`,
        });
        continue;
      }
      if (!desc) {
        ctx.logger.debug("not a base backup, skipped", { source: this.name, dir });
        this.#findings.push({
          source: this.name,
          backupId: name,
          kind: "backup_unrecognized",
          severity: "warning",
          message: `${dir} is neither pg_basebackup output (backup_label, base.tar*) nor a data directory snapshot`,
        });
        continue;
      }
      found.push(await backupRecord(this.#cfg, desc, archive));
    }
    if (archive && found.length > 0) {
      const tli = latestRecoveryTimeline(archive.index);
      const end = await lastTransactionTime(archive, tli).catch((err) => {
        ctx.logger.debug("pg_waldump could not read the archive's newest segments", {
          source: this.name,
          error: describeError(err),
        });
        return undefined;
      });
      const newestName = archive.index.files.get(tli)?.get(archive.index.segments.get(tli)?.at(-1) ?? -1);
      const fallback = newestName ? archive.mtimeOf(newestName)?.toISOString() : undefined;
      const archiveEnd = end
        ? { time: end.time, from: `last transaction in ${end.segment} (pg_waldump)` }
        : fallback
          ? {
              time: fallback,
              from: `modification time of ${newestName} (approximate: pg_waldump unavailable)`,
            }
          : undefined;
      for (const b of found) if (b.walArchive && archiveEnd) b.walArchive.end = archiveEnd;
    }
    return found.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async inspect(backups: readonly Backup[], ctx: SourceContext): Promise<Finding[]> {
    const findings = [...this.#findings];
    for (const b of backups) {
      if (b.problem) {
        findings.push({
          source: this.name,
          series: b.series,
          backupId: b.id,
          kind: "backup_unreadable",
          severity: "critical",
          message: `${b.id}: ${b.problem}`,
        });
      }
    }
    const archive = await this.#archive();
    if (!archive) {
      findings.push({
        source: this.name,
        kind: "wal_archive_missing",
        severity: "warning",
        message:
          "no wal_archive configured: base backups can only be restored to their own end, PITR is impossible",
      });
      return findings;
    }
    const needs: BackupWalNeed[] = [];
    for (const b of backups) {
      const r = b.walRange;
      const detail = detailOf(b, "basebackup");
      if (!r || (detail?.layout.kind === "snapshot" && !detail.layout.labelFile)) continue;
      const segSize = archive.index.segSize;
      needs.push({
        id: b.id,
        tli: r.timeline,
        startSeg: segmentOfLsn(parseLsn(r.startLsn), segSize),
        ...(r.stopLsn ? { stopSeg: segmentOfLsn(parseLsn(r.stopLsn) - 1n, segSize) } : {}),
        consistentAt: b.createdAt,
        walIncluded: detail?.walIncluded === "yes",
      });
    }
    const series = backups[0]?.series;
    const started = Date.now();
    const result = inspectWal(archive, needs, {
      source: this.name,
      ...(series ? { series } : {}),
      now: new Date(),
      stallWarningMs: this.#cfg.wal_stall.warning,
      stallCriticalMs: this.#cfg.wal_stall.critical,
    });
    ctx.logger.debug("WAL archive inspected", {
      source: this.name,
      segments: [...archive.index.segments.values()].reduce((n, s) => n + s.length, 0),
      gaps: result.report.gaps.length,
      ms: Date.now() - started,
    });
    return [...findings, ...result.findings];
  }

  plan(rule: string, backups: readonly Backup[], now: Date): DrillPlan[] | undefined {
    return planPhysical(rule, backups, now, this.#random, {
      ...(this.#histories ? { histories: this.#histories } : {}),
    });
  }
}
