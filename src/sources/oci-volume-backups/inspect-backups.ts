/**
 * Static findings about a volume's backups: retention that stopped deleting, a chain with no
 * FULL backup, backups missing the defined tags policy asks for. Pure: the clock is an argument.
 */
import { type Backup, detailOf, type Finding } from "../../model.js";
import { formatDuration } from "../../util/duration.js";
import { hasDefinedTags } from "./describe-backup.js";
import type { OciVolumeBackupsSourceConfig } from "./oci-volume-config.js";

const DAY = 86_400_000;

/** Findings for the listed (AVAILABLE, filtered) backups of one source. */
export function inspectBackups(
  backups: readonly Backup[],
  cfg: OciVolumeBackupsSourceConfig,
  now: number,
): Finding[] {
  const out: Finding[] = [];
  const base = { source: cfg.name, series: cfg.volume_id };

  if (cfg.retention_days !== undefined) {
    const limit = cfg.retention_days * DAY + cfg.retention_grace;
    for (const b of backups) {
      const age = now - Date.parse(b.createdAt);
      if (age <= limit) continue;
      out.push({
        ...base,
        backupId: b.id,
        kind: "retention_not_enforced",
        severity: "critical",
        message: `backup ${detailOf(b, "oci-volume")?.displayName ?? b.id} (${b.id}) is ${formatDuration(age)} old and still AVAILABLE; retention_days is ${cfg.retention_days} (+${formatDuration(cfg.retention_grace)} grace): old backups are not being deleted`,
      });
    }
  }

  if (
    cfg.require_full &&
    backups.length > 0 &&
    !backups.some((b) => detailOf(b, "oci-volume")?.type === "FULL")
  ) {
    out.push({
      ...base,
      kind: "no_full_backup",
      severity: "warning",
      message: `none of the ${backups.length} backups of ${cfg.volume_id} is FULL (require_full); every one is INCREMENTAL`,
    });
  }

  if (cfg.expect_defined_tags) {
    const wanted = cfg.expect_defined_tags;
    for (const b of backups) {
      const facts = detailOf(b, "oci-volume");
      if (hasDefinedTags(facts?.definedTags, wanted)) continue;
      out.push({
        ...base,
        backupId: b.id,
        kind: "missing_defined_tags",
        severity: "warning",
        message: `backup ${facts?.displayName ?? b.id} (${b.id}) lacks the expected defined tags ${JSON.stringify(wanted)} (has ${facts?.definedTags ? JSON.stringify(facts.definedTags) : "none"})`,
      });
    }
  }
  return out;
}
