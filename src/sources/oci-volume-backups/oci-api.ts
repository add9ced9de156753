/**
 * The slice of the OCI Block Storage and Compute APIs this source uses, as small local types,
 * and its one implementation on the OCI TypeScript SDK (loaded on first use: it is large).
 * One method = one HTTP request; retries and guards live in the callers.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { format } from "node:util";
import type * as OciCommon from "oci-common";
import type * as OciCore from "oci-core";
import { VerifierError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import type { OciVolumeBackupsSourceConfig } from "./oci-volume-config.js";

/** Defined tags: namespace → key → value. */
export type DefinedTags = Record<string, Record<string, unknown>>;

/** A volume backup (models.VolumeBackup), what Attest reads of it. */
export interface OciVolumeBackup {
  id: string;
  displayName: string;
  lifecycleState: string;
  /** ISO string at run time (the SDK does not revive dates). */
  timeCreated: string | Date;
  type?: string;
  sourceType?: string;
  volumeId?: string;
  sizeInGBs?: number;
  sizeInMBs?: number;
  uniqueSizeInGBs?: number;
  expirationTime?: string | Date;
  freeformTags?: Record<string, string>;
  definedTags?: DefinedTags;
}

/** A block volume (models.Volume). */
export interface OciVolume {
  id: string;
  displayName: string;
  lifecycleState: string;
  availabilityDomain: string;
  compartmentId: string;
  timeCreated: string | Date;
  sizeInGBs?: number;
  freeformTags?: Record<string, string>;
  sourceDetails?: { type: string; id: string };
}

/** A volume attachment (models.VolumeAttachment; iSCSI ones carry their target). */
export interface OciVolumeAttachment {
  id: string;
  volumeId: string;
  instanceId: string;
  lifecycleState: string;
  attachmentType?: string;
  device?: string;
  displayName?: string;
  ipv4?: string;
  iqn?: string;
  port?: number;
}

/** One page of a list operation. */
export interface OciPage<T> {
  items: T[];
  next?: string;
}

/** What a clone is created from and tagged with. */
export interface CreateCloneDetails {
  compartmentId: string;
  availabilityDomain: string;
  displayName: string;
  backupId: string;
  freeformTags: Record<string, string>;
  definedTags?: DefinedTags;
  /** Makes a retried CreateVolume return the volume the first attempt made. */
  retryToken: string;
}

/** The API calls the source makes. */
export interface OciApi {
  /** The region the clients talk to, when known. */
  readonly region?: string;
  listVolumeBackups(q: {
    compartmentId: string;
    volumeId: string;
    page?: string;
  }): Promise<OciPage<OciVolumeBackup>>;
  listVolumes(q: { compartmentId: string; displayName?: string; page?: string }): Promise<OciPage<OciVolume>>;
  getVolume(volumeId: string): Promise<OciVolume>;
  createVolume(d: CreateCloneDetails): Promise<OciVolume>;
  deleteVolume(volumeId: string): Promise<void>;
  /** Device names free on the instance (consistent device paths). */
  listAvailableDevices(instanceId: string): Promise<string[]>;
  attachVolume(d: {
    type: "paravirtualized" | "iscsi";
    instanceId: string;
    volumeId: string;
    device: string;
    displayName: string;
  }): Promise<OciVolumeAttachment>;
  getVolumeAttachment(attachmentId: string): Promise<OciVolumeAttachment>;
  detachVolume(attachmentId: string): Promise<void>;
  listVolumeAttachments(q: {
    compartmentId: string;
    instanceId?: string;
    volumeId?: string;
    page?: string;
  }): Promise<OciPage<OciVolumeAttachment>>;
}

type OciAuthConfig = OciVolumeBackupsSourceConfig["oci"];

/** The logger of the SDK call running in this async context. */
const sdkScope = new AsyncLocalStorage<Logger>();
let consoleCaptured = false;

/**
 * The SDK writes to the console by itself (a line per failed request, and `console.info`
 * on stdout, where `--json` prints its one document). While an SDK call runs, console
 * output goes to our logger at debug level instead; everyone else's console is untouched.
 */
function captureSdkConsole(): void {
  if (consoleCaptured) return;
  consoleCaptured = true;
  for (const level of ["log", "info", "warn", "error", "debug"] as const) {
    const original = console[level].bind(console);
    console[level] = (...args: unknown[]) => {
      const logger = sdkScope.getStore();
      if (logger) logger.debug("OCI SDK says", { message: format(...args) });
      else original(...args);
    };
  }
}

/** Creates the SDK clients for `auth`; a bad profile or key file is a VerifierError. */
export async function createOciApi(auth: OciAuthConfig, logger: Logger): Promise<OciApi> {
  const [common, core] = await Promise.all([import("oci-common"), import("oci-core")]);
  captureSdkConsole();
  const privateKey = auth.tenancy
    ? (auth.private_key ?? (await import("node:fs")).readFileSync(auth.key_file!, "utf8"))
    : "";
  let provider: OciCommon.AuthenticationDetailsProvider;
  try {
    provider = sdkScope.run(logger, () =>
      auth.tenancy
        ? new common.SimpleAuthenticationDetailsProvider(
            auth.tenancy,
            auth.user!,
            auth.fingerprint!,
            privateKey,
            auth.passphrase ?? null,
          )
        : new common.ConfigFileAuthenticationDetailsProvider(auth.config_file, auth.profile),
    );
  } catch (err) {
    const where = auth.tenancy
      ? "the oci: API-key settings"
      : `profile ${auth.profile} of ${auth.config_file}`;
    throw new VerifierError(`cannot use ${where}: ${(err as Error).message}`, { cause: err });
  }
  // opossum's breaker would turn a 429 storm into its own "breaker is open" errors; we retry ourselves
  const config = { circuitBreaker: new common.CircuitBreaker({ disableClientCircuitBreaker: true }) };
  const blockstorage = new core.BlockstorageClient({ authenticationDetailsProvider: provider }, config);
  const compute = new core.ComputeClient({ authenticationDetailsProvider: provider }, config);
  for (const client of [blockstorage, compute]) {
    if (auth.endpoint) client.endpoint = auth.endpoint;
    else if (auth.region) client.regionId = auth.region;
  }
  const region = auth.region ?? regionOf(provider);
  return sdkApi(blockstorage, compute, region, <T>(call: () => Promise<T>) => sdkScope.run(logger, call));
}

function regionOf(provider: OciCommon.AuthenticationDetailsProvider): string | undefined {
  const p = provider as { getRegion?: () => { regionId?: string } | undefined };
  try {
    return p.getRegion?.()?.regionId;
  } catch {
    return undefined;
  }
}

function sdkApi(
  bs: OciCore.BlockstorageClient,
  compute: OciCore.ComputeClient,
  region: string | undefined,
  sdk: <T>(call: () => Promise<T>) => Promise<T>,
): OciApi {
  const page = <T>(items: T[], next: string | undefined): OciPage<T> => ({
    items,
    ...(next ? { next } : {}),
  });
  return {
    ...(region ? { region } : {}),
    async listVolumeBackups(q) {
      const r = await sdk(() => bs.listVolumeBackups({ ...q, limit: 100 }));
      return page(r.items as OciVolumeBackup[], r.opcNextPage);
    },
    async listVolumes(q) {
      const r = await sdk(() => bs.listVolumes({ ...q, limit: 100 }));
      return page(r.items as OciVolume[], r.opcNextPage);
    },
    async getVolume(volumeId) {
      return (await sdk(() => bs.getVolume({ volumeId }))).volume as OciVolume;
    },
    async createVolume(d) {
      const r = await sdk(() =>
        bs.createVolume({
          createVolumeDetails: {
            compartmentId: d.compartmentId,
            availabilityDomain: d.availabilityDomain,
            displayName: d.displayName,
            sourceDetails: {
              type: "volumeBackup",
              id: d.backupId,
            } as OciCore.models.VolumeSourceFromVolumeBackupDetails,
            freeformTags: d.freeformTags,
            ...(d.definedTags
              ? { definedTags: d.definedTags as Record<string, Record<string, object>> }
              : {}),
          },
          opcRetryToken: d.retryToken,
        }),
      );
      return r.volume as OciVolume;
    },
    async deleteVolume(volumeId) {
      await sdk(() => bs.deleteVolume({ volumeId }));
    },
    async listAvailableDevices(instanceId) {
      const r = await sdk(() => compute.listInstanceDevices({ instanceId, isAvailable: true, limit: 100 }));
      return r.items.filter((d) => d.isAvailable).map((d) => d.name);
    },
    async attachVolume(d) {
      const details = {
        type: d.type,
        instanceId: d.instanceId,
        volumeId: d.volumeId,
        device: d.device,
        displayName: d.displayName,
        isReadOnly: false,
      } as OciCore.models.AttachParavirtualizedVolumeDetails | OciCore.models.AttachIScsiVolumeDetails;
      return (await sdk(() => compute.attachVolume({ attachVolumeDetails: details })))
        .volumeAttachment as OciVolumeAttachment;
    },
    async getVolumeAttachment(volumeAttachmentId) {
      return (await sdk(() => compute.getVolumeAttachment({ volumeAttachmentId })))
        .volumeAttachment as OciVolumeAttachment;
    },
    async detachVolume(volumeAttachmentId) {
      await sdk(() => compute.detachVolume({ volumeAttachmentId }));
    },
    async listVolumeAttachments(q) {
      const r = await sdk(() => compute.listVolumeAttachments({ ...q, limit: 100 }));
      return page(r.items as OciVolumeAttachment[], r.opcNextPage);
    },
  };
}

/** Every item of a paged list operation. */
export async function listAll<T>(fetchPage: (page?: string) => Promise<OciPage<T>>): Promise<T[]> {
  const all: T[] = [];
  let next: string | undefined;
  for (let n = 0; n < 10_000; n++) {
    const p = await fetchPage(next);
    all.push(...p.items);
    if (!p.next) return all;
    next = p.next;
  }
  throw new VerifierError("OCI list did not end after 10000 pages");
}
