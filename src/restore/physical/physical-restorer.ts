/**
 * Restores a pg_basebackup (plain or tar) into an empty sandbox: extract, pg_verifybackup,
 * then archive recovery from the WAL archive to the drill's target, promoted at the end.
 */
import { existsSync } from "node:fs";
import { type Backup, type DrillPlan, detailOf, type RecoveryTarget } from "../../model.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { BackupDefectError, VerifierError } from "../../util/errors.js";
import { readWalArchive, type WalArchive } from "../../wal/wal-archive.js";
import { archiveEndOn, latestRecoveryTimeline } from "../../wal/wal-continuity.js";
import {
  historyFileName,
  parseLsn,
  parseWalFileName,
  segmentName,
  segmentOfLsn,
} from "../../wal/wal-names.js";
import type { RestoreContext, RestoreOutcome, Restorer } from "../restorer.js";
import { extractBackup } from "./extract.js";
import { describeTarget } from "./recovery-config.js";
import type { RecoveryLogFacts } from "./recovery-log.js";
import { type RecoveryResult, recoveryOutcome, runRecovery } from "./recovery-run.js";
import { verifyBackup } from "./verify-backup.js";

/** Options of the physical restorer. */
export interface PhysicalRestorerOptions {
  /** Superuser of the backed-up cluster (to connect before the sandbox's own login exists). */
  superuser: string;
  /** WAL archive host path (the source's wal_archive). */
  walArchive?: string;
}

/** Restores base backups with archive recovery. */
export class PhysicalRestorer implements Restorer {
  readonly name = "physical";
  readonly sandboxMode = "empty" as const;
  readonly #opts: PhysicalRestorerOptions;

  constructor(opts: PhysicalRestorerOptions) {
    this.#opts = Object.freeze({ ...opts });
  }

  inputs(plan: DrillPlan): string[] {
    const archive = this.#opts.walArchive;
    return [plan.backup.location, ...(archive ? [archive] : [])];
  }

  async preflight(plan: DrillPlan): Promise<void> {
    const b = plan.backup;
    if (b.problem) throw new BackupDefectError(`${b.id}: ${b.problem}`);
    if (!existsSync(b.location)) throw new VerifierError(`${b.location} does not exist (any more)`);
    const archive = this.#opts.walArchive;
    if (archive && !existsSync(archive)) throw new VerifierError(`WAL archive ${archive} does not exist`);
    if (!archive && plan.target && plan.target.kind !== "immediate") {
      throw new VerifierError(
        `a recovery target (${describeTarget(plan.target)}) needs a WAL archive; the source has no wal_archive`,
      );
    }
  }

  async restore(sandbox: Sandbox, ctx: RestoreContext): Promise<RestoreOutcome> {
    const { backup } = ctx.plan;
    await this.preflight(ctx.plan);
    const archiveHost = this.#opts.walArchive;
    // without an archive, a backup carrying its WAL is brought to consistency by crash-style recovery
    const target: RecoveryTarget | undefined = archiveHost
      ? (ctx.plan.target ?? { kind: "immediate" })
      : undefined;
    const notes = await extractBackup(sandbox, backup, ctx);
    if (backup.manifest) notes.push(await verifyBackup(sandbox, sandbox.inputPath(backup.manifest), ctx));
    else notes.push("no backup_manifest: files not verified against a manifest");

    const archive = archiveHost
      ? await readWalArchive(archiveHost, { segSize: detailOf(backup, "basebackup")?.walSegmentSize })
      : undefined;
    ctx.progress(`recovering to ${target ? describeTarget(target) : "the end of the backup's own WAL"}`);
    const result = await runRecovery(sandbox, ctx, {
      ...(target ? { target } : {}),
      ...(archiveHost ? { archiveDir: sandbox.inputPath(archiveHost) } : {}),
      superuser: this.#opts.superuser,
      ...(backup.walRange ? { startLsn: backup.walRange.startLsn } : {}),
      ...(archive ? { explainStop: (facts) => explainStop(archive, facts, backup) } : {}),
    });
    if (target?.kind === "latest" && archive) checkReachedEnd(archive, result);
    return recoveryOutcome(result, notes);
  }
}

/** What the archive says about where replay had to stop: the first missing segment after it. */
export function explainStop(
  archive: WalArchive,
  facts: RecoveryLogFacts,
  backup: Backup,
): string | undefined {
  const idx = archive.index;
  const segSize = idx.segSize;
  let tli: number | undefined;
  let seg: number | undefined;
  const restored = facts.lastRestored ? parseWalFileName(facts.lastRestored, segSize) : undefined;
  if (restored?.kind === "segment") {
    tli = restored.tli;
    seg = restored.segNo;
  } else if (backup.walRange) {
    // nothing was restored at all: the backup's own start segment is the one missing
    tli = backup.walRange.timeline;
    seg = segmentOfLsn(parseLsn(backup.walRange.startLsn), segSize) - 1;
  }
  if (tli === undefined || seg === undefined) return undefined;
  const next = seg + 1;
  const name = segmentName(tli, next, segSize);
  const files = idx.files.get(tli);
  if (files?.has(next)) return `${name} is in the archive but could not be restored or replayed (damaged?)`;
  const later = idx.segments.get(tli)?.find((s) => s > next);
  return `WAL segment ${name} is missing from the archive${later !== undefined ? ` (it continues at ${segmentName(tli, later, segSize)})` : " (the archive ends before it)"}`;
}

/** For target `latest`: the replay must have reached the newest segment of the newest timeline. */
export function checkReachedEnd(archive: WalArchive, result: RecoveryResult): void {
  const idx = archive.index;
  const withSegments = [...idx.segments.keys()].filter((t) => (idx.segments.get(t)?.length ?? 0) > 0);
  const newestTli = Math.max(latestRecoveryTimeline(idx), ...withSegments);
  const reachedTli = result.reached.timeline ?? 1;
  const end = archiveEndOn(idx, newestTli) ?? archiveEndOn(idx, reachedTli);
  if (!end || !result.reached.lsn) return;
  const reachedSeg = segmentOfLsn(parseLsn(result.reached.lsn) - 1n, idx.segSize);
  const where = `replay ended at ${result.reached.lsn} on timeline ${reachedTli}${result.reached.timestamp ? ` (last transaction at ${result.reached.timestamp})` : ""}`;
  if (reachedTli < newestTli && idx.segments.get(newestTli)?.length) {
    const hist = idx.histories.has(newestTli)
      ? ""
      : `; ${historyFileName(newestTli)} is missing, so recovery could not switch to timeline ${newestTli}`;
    throw new BackupDefectError(
      `the end of the archive was not reached: ${where}, but the archive holds WAL of timeline ${newestTli} up to ${end.name}${hist}`,
    );
  }
  if (reachedSeg < end.segNo) {
    const missing = segmentName(reachedTli, reachedSeg + 1, idx.segSize);
    const present = idx.files.get(reachedTli)?.has(reachedSeg + 1);
    throw new BackupDefectError(
      `the end of the archive was not reached: ${where}, but the archive continues up to ${end.name}; ` +
        (present
          ? `${missing} is present but could not be replayed (damaged?)`
          : `WAL segment ${missing} is missing from the archive`) +
        "; PITR past this point is impossible from this backup",
    );
  }
}
