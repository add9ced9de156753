/** One OCI volume backup as a Backup record: filters, labels, the kept backup_label. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Backup, VolumeBackupDetail } from "../../model.js";
import type { DefinedTags, OciVolumeBackup } from "./oci-api.js";
import type { OciVolumeBackupsSourceConfig } from "./oci-volume-config.js";

const GB = 1024 ** 3;
const MB = 1024 ** 2;

/** pg_backup_oci names its backups `backup_YYYYMMDDHHMMSS` and tags them `script: pg_backup_oci.py - Ver. …`. */
const PG_BACKUP_OCI_NAME = /^backup_\d{14}$/;
const PG_BACKUP_OCI_SCRIPT = /pg_backup_oci/i;

/** Whether a backup carries every tag of `wanted` with the same value. */
export function hasDefinedTags(tags: DefinedTags | undefined, wanted: DefinedTags): boolean {
  return Object.entries(wanted).every(([ns, keys]) =>
    Object.entries(keys).every(([k, v]) => String(tags?.[ns]?.[k]) === String(v)),
  );
}

/** Whether a backup passes the configured filters (defined / freeform tags, display name). */
export function matchesFilters(b: OciVolumeBackup, cfg: OciVolumeBackupsSourceConfig): boolean {
  if (cfg.defined_tags && !hasDefinedTags(b.definedTags, cfg.defined_tags)) return false;
  if (cfg.freeform_tags) {
    for (const [k, v] of Object.entries(cfg.freeform_tags)) if (b.freeformTags?.[k] !== v) return false;
  }
  if (cfg.display_name && !new RegExp(cfg.display_name).test(b.displayName)) return false;
  return true;
}

/** Whether the pg_backup_oci script took the backup (by its tag, or by its naming). */
export function isPgBackupOci(b: OciVolumeBackup): boolean {
  return PG_BACKUP_OCI_SCRIPT.test(b.freeformTags?.script ?? "") || PG_BACKUP_OCI_NAME.test(b.displayName);
}

/** The kept backup_label of a backup, by display name or OCID, when one exists. */
export function keptLabel(b: OciVolumeBackup, dir: string | undefined): string | undefined {
  if (!dir) return undefined;
  return [b.displayName, b.id].map((n) => join(dir, `${n}.backup_label`)).find((p) => existsSync(p));
}

/** The Backup record of an AVAILABLE volume backup. */
export function describeBackup(
  b: OciVolumeBackup,
  cfg: OciVolumeBackupsSourceConfig,
  region: string | undefined,
): Backup {
  const labels: Record<string, string> = {
    volumeId: b.volumeId ?? cfg.volume_id,
    lifecycleState: b.lifecycleState,
  };
  if (b.sourceType) labels.sourceType = b.sourceType;
  if (b.uniqueSizeInGBs !== undefined) labels.uniqueSizeInGBs = String(b.uniqueSizeInGBs);
  if (b.expirationTime) labels.expirationTime = new Date(b.expirationTime).toISOString();
  if (b.freeformTags && Object.keys(b.freeformTags).length)
    labels.freeformTags = JSON.stringify(b.freeformTags);
  if (isPgBackupOci(b)) labels.pgBackupOci = "true";
  const label = keptLabel(b, cfg.backup_labels);
  const detail: VolumeBackupDetail = {
    kind: "oci-volume",
    displayName: b.displayName,
    ...(b.type ? { type: b.type } : {}),
    ...(b.sizeInGBs !== undefined ? { sizeGb: b.sizeInGBs } : {}),
    ...(b.definedTags && Object.keys(b.definedTags).length ? { definedTags: b.definedTags } : {}),
    ...(label ? { labelFile: label } : {}),
  };
  const sizeBytes = b.sizeInMBs !== undefined ? b.sizeInMBs * MB : (b.sizeInGBs ?? 0) * GB;
  return {
    source: cfg.name,
    id: b.id,
    // the volume is the series: one cluster's PGDATA lives on it
    series: cfg.volume_id,
    family: "snapshot",
    format: "oci-volume-backup",
    // the backup is a point-in-time copy as of its request: timeCreated
    createdAt: new Date(b.timeCreated).toISOString(),
    createdAtOrigin: "api",
    sizeBytes,
    location: `oci://${region ? `${region}/` : ""}volumeBackups/${b.id}`,
    detail,
    labels,
  };
}
