/** In-memory state of the emulated tenancy: backups, volumes, attachments and instances. */
import { newOcid, notFound } from "./http-io.js";
import type { AttachmentRecord, BackupRecord, InstanceRecord, VolumeRecord } from "./resources.js";
import type { BackupSeed, EmulatorState, InstanceSeed, VolumeSeed } from "./types.js";

/** Devices OCI offers for consistent device paths (a subset: oraclevdb … oraclevdz). */
export const DEVICE_NAMES: readonly string[] = Array.from(
  { length: 25 },
  (_, i) => `/dev/oracleoci/oraclevd${String.fromCharCode(98 + i)}`,
);

/** Normalizes any accepted time to the ISO form OCI answers with. */
export function isoTime(time: string | Date | undefined, fallback = new Date()): string {
  return new Date(time ?? fallback).toISOString();
}

/** All resources of the emulated tenancy, keyed by OCID. */
export class ResourceStore {
  readonly backups = new Map<string, BackupRecord>();
  readonly volumes = new Map<string, VolumeRecord>();
  readonly attachments = new Map<string, AttachmentRecord>();
  readonly instances = new Map<string, InstanceRecord>();
  /** `opc-retry-token` → volume created with it, so a retried CreateVolume is idempotent. */
  readonly createTokens = new Map<string, string>();
  readonly problems: string[] = [];

  constructor(readonly region: string) {}

  /** Adds a backup as seeded by a test. */
  addBackup(seed: BackupSeed): BackupRecord {
    const record: BackupRecord = {
      id: seed.id ?? newOcid("volumebackup", this.region),
      compartmentId: seed.compartmentId,
      volumeId: seed.volumeId,
      displayName: seed.displayName ?? `backup-${isoTime(seed.timeCreated)}`,
      timeCreated: isoTime(seed.timeCreated),
      type: seed.type ?? "FULL",
      sourceType: seed.sourceType ?? "SCHEDULED",
      lifecycleState: seed.lifecycleState ?? "AVAILABLE",
      sizeInGBs: seed.sizeInGBs ?? 50,
      uniqueSizeInGBs: seed.uniqueSizeInGBs ?? seed.sizeInGBs ?? 50,
      expirationTime: seed.expirationTime === undefined ? undefined : isoTime(seed.expirationTime),
      freeformTags: { ...seed.freeformTags },
      definedTags: { ...seed.definedTags },
      imagePath: seed.imagePath,
    };
    this.backups.set(record.id, record);
    return record;
  }

  /** Adds a pre-existing volume (no image: API-only). */
  addVolume(seed: VolumeSeed): VolumeRecord {
    const record: VolumeRecord = {
      id: seed.id ?? newOcid("volume", this.region),
      compartmentId: seed.compartmentId,
      availabilityDomain: seed.availabilityDomain,
      displayName: seed.displayName ?? "volume",
      sizeInGBs: seed.sizeInGBs ?? 50,
      timeCreated: isoTime(seed.timeCreated),
      lifecycleState: seed.lifecycleState ?? "AVAILABLE",
      isHydrated: true,
      freeformTags: { ...seed.freeformTags },
      definedTags: { ...seed.definedTags },
      sourceBackupId: undefined,
      imagePath: undefined,
    };
    this.volumes.set(record.id, record);
    return record;
  }

  /** Registers an instance that volumes may attach to. */
  addInstance(seed: InstanceSeed): void {
    this.instances.set(seed.id, { ...seed });
  }

  /** A backup by id, or 404. */
  backup(id: string): BackupRecord {
    return found(this.backups.get(id), `volume backup ${id}`);
  }

  /** A volume by id, or 404. */
  volume(id: string): VolumeRecord {
    return found(this.volumes.get(id), `volume ${id}`);
  }

  /** An attachment by id, or 404. */
  attachment(id: string): AttachmentRecord {
    return found(this.attachments.get(id), `volume attachment ${id}`);
  }

  /** An instance by id, or 404. */
  instance(id: string): InstanceRecord {
    return found(this.instances.get(id), `instance ${id}`);
  }

  /** Attachments that still hold their volume (anything but DETACHED). */
  liveAttachments(): AttachmentRecord[] {
    return [...this.attachments.values()].filter((a) => a.lifecycleState !== "DETACHED");
  }

  /** A snapshot for test assertions; `loopDevices` comes from the host side. */
  snapshot(loopDevices: string[]): EmulatorState {
    return {
      volumes: [...this.volumes.values()].map((v) => ({
        id: v.id,
        displayName: v.displayName,
        lifecycleState: v.lifecycleState,
        sourceBackupId: v.sourceBackupId,
        imagePath: v.imagePath,
        freeformTags: { ...v.freeformTags },
      })),
      attachments: [...this.attachments.values()].map((a) => ({
        id: a.id,
        volumeId: a.volumeId,
        instanceId: a.instanceId,
        lifecycleState: a.lifecycleState,
        device: a.device,
        hostPath: a.hostPath,
        loopDevice: a.loopDevice,
      })),
      loopDevices,
      problems: [...this.problems],
    };
  }
}

function found<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw notFound(what);
  return value;
}
