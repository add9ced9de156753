/** Emulator-side resource records and their JSON form, shaped like the OCI SDK models expect. */
import type {
  AttachmentState,
  AttachmentType,
  BackupSeed,
  DefinedTags,
  FreeformTags,
  InstanceSeed,
  VolumeState,
} from "./types.js";

/** A volume backup (models.VolumeBackup). */
export interface BackupRecord {
  id: string;
  compartmentId: string;
  volumeId: string;
  displayName: string;
  timeCreated: string;
  type: "FULL" | "INCREMENTAL";
  sourceType: "MANUAL" | "SCHEDULED";
  lifecycleState: NonNullable<BackupSeed["lifecycleState"]>;
  sizeInGBs: number;
  uniqueSizeInGBs: number;
  expirationTime: string | undefined;
  freeformTags: FreeformTags;
  definedTags: DefinedTags;
  imagePath: string | undefined;
}

/** A block volume (models.Volume); clones carry a private copy of their backup's image. */
export interface VolumeRecord {
  id: string;
  compartmentId: string;
  availabilityDomain: string;
  displayName: string;
  sizeInGBs: number;
  timeCreated: string;
  lifecycleState: VolumeState;
  isHydrated: boolean;
  freeformTags: FreeformTags;
  definedTags: DefinedTags;
  sourceBackupId: string | undefined;
  imagePath: string | undefined;
}

/** A volume attachment (models.ParavirtualizedVolumeAttachment / models.IScsiVolumeAttachment). */
export interface AttachmentRecord {
  id: string;
  attachmentType: AttachmentType;
  compartmentId: string;
  availabilityDomain: string;
  instanceId: string;
  volumeId: string;
  device: string | undefined;
  displayName: string;
  isReadOnly: boolean;
  isShareable: boolean;
  lifecycleState: AttachmentState;
  timeCreated: string;
  /** Emulator-only: the loop device standing in for the attached disk. */
  loopDevice: string | undefined;
  /** Emulator-only: the symlink under deviceRoot that stands in for `device`. */
  hostPath: string | undefined;
}

/** A compute instance (only what attachments need). */
export type InstanceRecord = InstanceSeed;

/** JSON body of a volume backup. */
export function backupJson(b: BackupRecord): Record<string, unknown> {
  return {
    id: b.id,
    compartmentId: b.compartmentId,
    volumeId: b.volumeId,
    displayName: b.displayName,
    lifecycleState: b.lifecycleState,
    timeCreated: b.timeCreated,
    timeRequestReceived: b.timeCreated,
    type: b.type,
    sourceType: b.sourceType,
    sizeInGBs: b.sizeInGBs,
    sizeInMBs: b.sizeInGBs * 1024,
    uniqueSizeInGBs: b.uniqueSizeInGBs,
    uniqueSizeInMbs: b.uniqueSizeInGBs * 1024,
    expirationTime: b.expirationTime,
    freeformTags: b.freeformTags,
    definedTags: b.definedTags,
    systemTags: {},
  };
}

/** JSON body of a volume. */
export function volumeJson(v: VolumeRecord): Record<string, unknown> {
  return {
    id: v.id,
    compartmentId: v.compartmentId,
    availabilityDomain: v.availabilityDomain,
    displayName: v.displayName,
    lifecycleState: v.lifecycleState,
    timeCreated: v.timeCreated,
    sizeInGBs: v.sizeInGBs,
    sizeInMBs: v.sizeInGBs * 1024,
    vpusPerGB: 10,
    isHydrated: v.isHydrated,
    isAutoTuneEnabled: false,
    autoTunedVpusPerGB: 10,
    sourceDetails: v.sourceBackupId ? { type: "volumeBackup", id: v.sourceBackupId } : undefined,
    blockVolumeReplicas: [],
    autotunePolicies: [],
    freeformTags: v.freeformTags,
    definedTags: v.definedTags,
    systemTags: {},
  };
}

/** JSON body of a volume attachment; iSCSI attachments carry their target's address. */
export function attachmentJson(a: AttachmentRecord): Record<string, unknown> {
  const common = {
    attachmentType: a.attachmentType,
    id: a.id,
    compartmentId: a.compartmentId,
    availabilityDomain: a.availabilityDomain,
    instanceId: a.instanceId,
    volumeId: a.volumeId,
    device: a.device,
    displayName: a.displayName,
    isReadOnly: a.isReadOnly,
    isShareable: a.isShareable,
    lifecycleState: a.lifecycleState,
    timeCreated: a.timeCreated,
    isPvEncryptionInTransitEnabled: false,
    isMultipath: false,
    isVolumeCreatedDuringLaunch: false,
  };
  if (a.attachmentType === "paravirtualized") return common;
  return {
    ...common,
    // Plain data in the JSON, like OCI's answer; nothing ever connects to this address.
    ipv4: "169.254.2.2",
    iqn: `iqn.2015-12.com.oracleiaas:${a.id.slice(-12)}`,
    port: 3260,
    encryptionInTransitType: "NONE",
    isAgentAutoIscsiLoginEnabled: false,
    iscsiLoginState: a.lifecycleState === "ATTACHED" ? "LOGIN_SUCCEEDED" : "UNKNOWN",
  };
}
