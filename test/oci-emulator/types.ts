/** Public types of the OCI Block Storage / Compute emulator: seeds, options, log and state snapshots. */

/** Lifecycle states of a volume, as OCI spells them. */
export const VOLUME_STATES = [
  "PROVISIONING",
  "RESTORING",
  "AVAILABLE",
  "TERMINATING",
  "TERMINATED",
  "FAULTY",
] as const;
/** A volume lifecycle state. */
export type VolumeState = (typeof VOLUME_STATES)[number];

/** Lifecycle states of a volume attachment. */
export const ATTACHMENT_STATES = ["ATTACHING", "ATTACHED", "DETACHING", "DETACHED"] as const;
/** A volume attachment lifecycle state. */
export type AttachmentState = (typeof ATTACHMENT_STATES)[number];

/** Attachment types the emulator accepts. */
export const ATTACHMENT_TYPES = ["paravirtualized", "iscsi"] as const;
/** An attachment type. */
export type AttachmentType = (typeof ATTACHMENT_TYPES)[number];

/** Tags as OCI carries them. */
export type FreeformTags = Record<string, string>;
/** Defined tags: namespace → key → value. */
export type DefinedTags = Record<string, Record<string, unknown>>;

/** A volume backup the emulator serves; `imagePath` is an ext4 image that clones copy. */
export interface BackupSeed {
  id?: string;
  compartmentId: string;
  volumeId: string;
  displayName?: string;
  timeCreated: string | Date;
  type?: "FULL" | "INCREMENTAL";
  sourceType?: "MANUAL" | "SCHEDULED";
  lifecycleState?: "CREATING" | "AVAILABLE" | "TERMINATING" | "TERMINATED" | "FAULTY" | "REQUEST_RECEIVED";
  sizeInGBs?: number;
  uniqueSizeInGBs?: number;
  expirationTime?: string | Date;
  freeformTags?: FreeformTags;
  definedTags?: DefinedTags;
  imagePath?: string;
}

/** A volume that exists before the test starts (the production volume, a leftover clone). */
export interface VolumeSeed {
  id?: string;
  compartmentId: string;
  availabilityDomain: string;
  displayName?: string;
  sizeInGBs?: number;
  timeCreated?: string | Date;
  lifecycleState?: VolumeState;
  freeformTags?: FreeformTags;
  definedTags?: DefinedTags;
}

/** A compute instance that volumes can be attached to (the verifier). */
export interface InstanceSeed {
  id: string;
  compartmentId: string;
  availabilityDomain: string;
}

/** How long each lifecycle transition takes, in milliseconds. */
export interface LifecycleDelays {
  provisionMs: number;
  attachMs: number;
  detachMs: number;
  terminateMs: number;
  /** How long a TERMINATED volume stays GET-able before it answers 404. */
  terminatedRetentionMs: number;
}

/** A signing key the emulator accepts; `keyId` is `tenancy/user/fingerprint`. */
export interface TrustedKey {
  keyId: string;
  publicKeyPem: string;
}

/** An injected failure: the next `times` matching requests answer `status` instead. */
export interface FaultRule {
  match: { method?: string; pathPrefix?: string };
  status: 401 | 409 | 429 | 500 | 502 | 503;
  times: number;
  code?: string;
  message?: string;
}

/** Outcome of cloning a volume from a backup. */
export type CloneOutcome = "available" | "faulty";

/** Behaviour a test may change while the emulator runs. */
export interface EmulatorSettings {
  cloneOutcome: CloneOutcome;
  /** Multiplies `provisionMs` of clones: slow hydration. */
  hydrationFactor: number;
  delays: LifecycleDelays;
  /** Largest accepted difference between the signed date and the emulator clock. */
  maxClockSkewMs: number;
}

/** Options of `startOciEmulator`. */
export interface OciEmulatorOptions {
  trustedKeys: TrustedKey[];
  region?: string;
  backups?: BackupSeed[];
  volumes?: VolumeSeed[];
  instances?: InstanceSeed[];
  delays?: Partial<LifecycleDelays>;
  hydrationFactor?: number;
  cloneOutcome?: CloneOutcome;
  maxClockSkewMs?: number;
  /** Stands in for /dev/oracleoci: attached devices appear here as symlinks to loop devices. */
  deviceRoot?: string;
  /** Parent of the emulator's temporary state directory (default: the OS temp dir). */
  tmpDir?: string;
}

/** One request as the emulator saw it. */
export interface RequestLogEntry {
  at: string;
  method: string;
  /** Path without the `/20160918` prefix and without the query. */
  path: string;
  query: Record<string, string>;
  operation: string | undefined;
  signatureVerified: boolean;
  keyId: string | undefined;
  authError: string | undefined;
  status: number;
  faultInjected: boolean;
  body: unknown;
}

/** A volume as `state()` reports it. */
export interface VolumeSnapshot {
  id: string;
  displayName: string;
  lifecycleState: VolumeState;
  sourceBackupId: string | undefined;
  imagePath: string | undefined;
  freeformTags: FreeformTags;
}

/** An attachment as `state()` reports it. */
export interface AttachmentSnapshot {
  id: string;
  volumeId: string;
  instanceId: string;
  lifecycleState: AttachmentState;
  device: string | undefined;
  hostPath: string | undefined;
  loopDevice: string | undefined;
}

/** What the emulator holds right now, for assertions. */
export interface EmulatorState {
  volumes: VolumeSnapshot[];
  attachments: AttachmentSnapshot[];
  loopDevices: string[];
  /** Background failures and misuse seen (e.g. a volume detached while mounted). */
  problems: string[];
}
