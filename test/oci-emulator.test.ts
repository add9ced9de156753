/**
 * The OCI emulator driven by the real OCI TypeScript SDK: signed requests, pagination, the clone →
 * attach (loop device) → detach → delete lifecycle, faults, SDK retries and waiters, and cleanup.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, realpath, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as common from "oci-common";
import * as core from "oci-core";
import * as workrequests from "oci-workrequests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createSigningKey,
  createTestKeys,
  type OciEmulator,
  type OciEmulatorOptions,
  startOciEmulator,
  type TestKeys,
} from "./oci-emulator/index.js";

const run = promisify(execFile);
const COMPARTMENT = "ocid1.compartment.oc1..attesttest";
const PROD_VOLUME = "ocid1.volume.oc1.sa-saopaulo-1.production";
const AD = "Uocm:SA-SAOPAULO-1-AD-1";
const INSTANCE = "ocid1.instance.oc1.sa-saopaulo-1.verifier";
const IMAGE_BACKUP = "ocid1.volumebackup.oc1.sa-saopaulo-1.daily6";
const NO_CIRCUIT_BREAKER = {
  circuitBreaker: new common.CircuitBreaker({ disableClientCircuitBreaker: true }),
};

let keys: TestKeys;
let workDir: string;
let imagePath: string;

beforeAll(async () => {
  keys = await createTestKeys();
  workDir = await mkdtemp(join(tmpdir(), "attest-oci-emulator-test-"));
  // A tiny ext4 image that looks like a PGDATA, built without mounting anything.
  const content = join(workDir, "content");
  await mkdir(content);
  await writeFile(join(content, "PG_VERSION"), "15\n");
  imagePath = join(workDir, "pgdata.img");
  await run("truncate", ["-s", "16M", imagePath]);
  await run("mkfs.ext4", ["-q", "-F", "-d", content, imagePath]);
});

afterAll(async () => {
  await keys?.remove();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

function emulatorOptions(extra: Partial<OciEmulatorOptions> = {}): OciEmulatorOptions {
  const backups = Array.from({ length: 7 }, (_, i) => ({
    id: `ocid1.volumebackup.oc1.sa-saopaulo-1.daily${i}`,
    compartmentId: COMPARTMENT,
    volumeId: PROD_VOLUME,
    displayName: `daily-${i}`,
    timeCreated: new Date(Date.UTC(2025, 0, 1 + i, 3)),
    type: i === 0 ? ("FULL" as const) : ("INCREMENTAL" as const),
    imagePath: i === 6 ? imagePath : undefined,
  }));
  return {
    trustedKeys: [keys.trustedKey],
    backups: [
      ...backups,
      { compartmentId: COMPARTMENT, volumeId: "ocid1.volume.oc1..other", timeCreated: new Date() },
    ],
    volumes: [{ id: PROD_VOLUME, compartmentId: COMPARTMENT, availabilityDomain: AD, displayName: "prod" }],
    instances: [{ id: INSTANCE, compartmentId: COMPARTMENT, availabilityDomain: AD }],
    delays: { provisionMs: 150, attachMs: 50, detachMs: 50, terminateMs: 50 },
    ...extra,
  };
}

function clients(emu: OciEmulator, retryConfiguration?: common.RetryConfiguration) {
  const provider = new common.ConfigFileAuthenticationDetailsProvider(keys.configPath, "DEFAULT");
  const config = { ...NO_CIRCUIT_BREAKER, ...(retryConfiguration ? { retryConfiguration } : {}) };
  const blockstorage = new core.BlockstorageClient({ authenticationDetailsProvider: provider }, config);
  const compute = new core.ComputeClient({ authenticationDetailsProvider: provider }, config);
  blockstorage.endpoint = emu.endpoint;
  compute.endpoint = emu.endpoint;
  return { blockstorage, compute, provider };
}

async function pollUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function ourLoopDevices(emu: OciEmulator): Promise<string[]> {
  const { stdout } = await run("losetup", ["--list", "--noheadings", "--output", "NAME,BACK-FILE"]);
  return stdout.split("\n").filter((line) => line.includes(emu.stateDir));
}

describe("OCI emulator with the real SDK", () => {
  it("lists volume backups newest first across three pages", async () => {
    await using emu = await startOciEmulator(emulatorOptions());
    const { blockstorage } = clients(emu);
    const pages: core.models.VolumeBackup[][] = [];
    let page: string | undefined;
    do {
      const res = await blockstorage.listVolumeBackups({
        compartmentId: COMPARTMENT,
        volumeId: PROD_VOLUME,
        limit: 3,
        page,
      });
      pages.push(res.items);
      page = res.opcNextPage;
    } while (page);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    const names = pages.flat().map((b) => b.displayName);
    expect(names).toEqual(["daily-6", "daily-5", "daily-4", "daily-3", "daily-2", "daily-1", "daily-0"]);
    const first = pages[0]![0]!;
    expect(first).toMatchObject({
      lifecycleState: "AVAILABLE",
      type: "INCREMENTAL",
      sourceType: "SCHEDULED",
    });
    expect(typeof first.timeCreated).toBe("string"); // the SDK leaves dates as ISO strings at run time
    const got = await blockstorage.getVolumeBackup({ volumeBackupId: first.id });
    expect(got.volumeBackup.id).toBe(first.id);
    expect(got.etag).toMatch(/^[0-9a-f]{32}$/);
    expect(emu.requests.every((r) => r.signatureVerified)).toBe(true);
  });

  it("clones a backup, attaches it as a loop device, detaches and deletes it", async () => {
    await using emu = await startOciEmulator(emulatorOptions());
    const { blockstorage, compute } = clients(emu);
    const [backup] = (
      await blockstorage.listVolumeBackups({ compartmentId: COMPARTMENT, volumeId: PROD_VOLUME })
    ).items;
    const created = await blockstorage.createVolume({
      createVolumeDetails: {
        compartmentId: COMPARTMENT,
        availabilityDomain: AD,
        displayName: "attest-clone",
        sourceDetails: { type: "volumeBackup", id: backup!.id },
        freeformTags: { "attest-run": "run-1" },
      },
    });
    expect(created.volume.lifecycleState).toBe("PROVISIONING");
    const volumeId = created.volume.id;
    const ready = await pollUntil(
      () => blockstorage.getVolume({ volumeId }),
      (r) => r.volume.lifecycleState !== "PROVISIONING",
    );
    expect(ready.volume.lifecycleState).toBe("AVAILABLE");

    const listed = await blockstorage.listVolumes({ compartmentId: COMPARTMENT });
    expect(listed.items.filter((v) => v.freeformTags?.["attest-run"] === "run-1").map((v) => v.id)).toEqual([
      volumeId,
    ]);

    const devices = await compute.listInstanceDevices({ instanceId: INSTANCE, isAvailable: true });
    const device = devices.items[0]!.name;
    expect(device).toBe("/dev/oracleoci/oraclevdb");
    const attach = await compute.attachVolume({
      attachVolumeDetails: { type: "paravirtualized", instanceId: INSTANCE, volumeId, device },
    });
    const attachmentId = attach.volumeAttachment.id;
    await pollUntil(
      () => compute.getVolumeAttachment({ volumeAttachmentId: attachmentId }),
      (r) => r.volumeAttachment.lifecycleState === "ATTACHED",
    );
    const [loop] = emu.state().loopDevices;
    expect(loop).toMatch(/^\/dev\/loop\d+$/);
    expect(await realpath(emu.hostPathOf(device))).toBe(loop);
    expect(await ourLoopDevices(emu)).toHaveLength(1);

    // The real mount path: the clone's filesystem holds the backup's PGDATA.
    const mountPoint = join(workDir, "mnt");
    await mkdir(mountPoint, { recursive: true });
    await run("mount", ["-o", "ro", emu.hostPathOf(device), mountPoint]);
    try {
      expect(await readFile(join(mountPoint, "PG_VERSION"), "utf8")).toBe("15\n");
    } finally {
      await run("umount", [mountPoint]);
    }

    const attachments = await compute.listVolumeAttachments({
      compartmentId: COMPARTMENT,
      instanceId: INSTANCE,
    });
    expect(attachments.items.map((a) => [a.volumeId, a.lifecycleState, a.device])).toEqual([
      [volumeId, "ATTACHED", device],
    ]);
    await compute.detachVolume({ volumeAttachmentId: attachmentId });
    await pollUntil(
      () => compute.getVolumeAttachment({ volumeAttachmentId: attachmentId }),
      (r) => r.volumeAttachment.lifecycleState === "DETACHED",
    );
    expect(emu.state().loopDevices).toEqual([]);
    await expect(stat(emu.hostPathOf(device))).rejects.toThrow();

    await blockstorage.deleteVolume({ volumeId });
    const gone = await pollUntil(
      () => blockstorage.getVolume({ volumeId }),
      (r) => r.volume.lifecycleState === "TERMINATED",
    );
    expect(gone.volume.lifecycleState).toBe("TERMINATED");

    const mutating = emu.requests.filter((r) => r.method !== "GET");
    expect(mutating.map((r) => r.operation)).toEqual([
      "CreateVolume",
      "AttachVolume",
      "DetachVolume",
      "DeleteVolume",
    ]);
    expect(
      mutating.some(
        (r) => r.path.includes(PROD_VOLUME) || JSON.stringify(r.body ?? null).includes(PROD_VOLUME),
      ),
    ).toBe(false);
    const final = await emu.close();
    expect(final.problems).toEqual([]);
    expect(final.loopDevices).toEqual([]);
    await expect(stat(emu.stateDir)).rejects.toThrow();
  }, 30_000);

  it("answers 401 NotAuthenticated to a wrong key and to an unsigned request", async () => {
    await using emu = await startOciEmulator(emulatorOptions());
    const wrong = createSigningKey();
    const impostor = new common.SimpleAuthenticationDetailsProvider(
      keys.tenancyId,
      keys.userId,
      keys.fingerprint, // the right keyId, signed with another private key
      wrong.privateKeyPem,
      null,
      common.Region.SA_SAOPAULO_1,
    );
    const client = new core.BlockstorageClient(
      { authenticationDetailsProvider: impostor },
      NO_CIRCUIT_BREAKER,
    );
    client.endpoint = emu.endpoint;
    await expect(client.listVolumeBackups({ compartmentId: COMPARTMENT })).rejects.toMatchObject({
      statusCode: 401,
      serviceCode: "NotAuthenticated",
    });
    const unsigned = await fetch(`${emu.endpoint}/20160918/volumes/${PROD_VOLUME}`, { method: "DELETE" });
    expect(unsigned.status).toBe(401);
    expect(await unsigned.json()).toMatchObject({ code: "NotAuthenticated" });
    expect(emu.requests.map((r) => [r.operation, r.signatureVerified, r.authError])).toEqual([
      ["ListVolumeBackups", false, "signature does not verify"],
      ["DeleteVolume", false, "missing Authorization header"],
    ]);
    expect(emu.state().volumes.find((v) => v.id === PROD_VOLUME)?.lifecycleState).toBe("AVAILABLE");

    emu.settings.maxClockSkewMs = -1; // every signed date is now "too old"
    const honest = clients(emu).blockstorage;
    await expect(honest.getVolume({ volumeId: PROD_VOLUME })).rejects.toMatchObject({ statusCode: 401 });
    expect(emu.requests.at(-1)?.authError).toMatch(/outside the allowed clock skew/);
  });

  it("shows a 429 to the SDK, which retries only when configured to", async () => {
    await using emu = await startOciEmulator(emulatorOptions());
    emu.faults.push({ match: { method: "GET", pathPrefix: "/volumeBackups" }, status: 429, times: 1 });
    const plain = clients(emu).blockstorage;
    await expect(plain.listVolumeBackups({ compartmentId: COMPARTMENT })).rejects.toMatchObject({
      statusCode: 429,
      serviceCode: "TooManyRequests",
    });
    expect(emu.requests.filter((r) => r.faultInjected)).toHaveLength(1); // no retry by default

    emu.faults.push({ match: { pathPrefix: "/volumeBackups" }, status: 429, times: 2 });
    const retrying = clients(emu, {
      terminationStrategy: new common.MaxAttemptsTerminationStrategy(3),
      delayStrategy: new common.FixedTimeDelayStrategy(0),
    }).blockstorage;
    const res = await retrying.listVolumeBackups({ compartmentId: COMPARTMENT });
    expect(res.items).toHaveLength(8);
    expect(emu.requests.filter((r) => r.faultInjected)).toHaveLength(3);
    expect(emu.requests.at(-1)).toMatchObject({ status: 200, faultInjected: false, signatureVerified: true });
  });

  it("makes a FAULTY clone on demand and slows hydration", async () => {
    await using emu = await startOciEmulator(emulatorOptions({ cloneOutcome: "faulty" }));
    const { blockstorage, compute } = clients(emu);
    const details = cloneDetails();
    const faulty = await blockstorage.createVolume({ createVolumeDetails: details });
    await pollUntil(
      () => blockstorage.getVolume({ volumeId: faulty.volume.id }),
      (r) => r.volume.lifecycleState === "FAULTY",
    );
    await expect(
      compute.attachVolume({
        attachVolumeDetails: { type: "iscsi", instanceId: INSTANCE, volumeId: faulty.volume.id },
      }),
    ).rejects.toMatchObject({ statusCode: 409, serviceCode: "IncorrectState" });

    // A retried CreateVolume with the same opc-retry-token gets the same volume, not a second one.
    const first = await blockstorage.createVolume({
      createVolumeDetails: details,
      opcRetryToken: "attest-run-1-clone",
    });
    const again = await blockstorage.createVolume({
      createVolumeDetails: details,
      opcRetryToken: "attest-run-1-clone",
    });
    expect(again.volume.id).toBe(first.volume.id);

    emu.settings.cloneOutcome = "available";
    // 150 ms × 100: still provisioning after the 400 ms below however slow this machine is
    emu.settings.hydrationFactor = 100;
    const slow = await blockstorage.createVolume({ createVolumeDetails: details });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await blockstorage.getVolume({ volumeId: slow.volume.id })).volume.lifecycleState).toBe(
      "PROVISIONING",
    );
  });

  it("SDK waiters: forVolume returns on TERMINATED, but throws 404 once the volume is gone", async () => {
    await using emu = await startOciEmulator(emulatorOptions());
    const { blockstorage, provider } = clients(emu);
    const waiterConfig = {
      terminationStrategy: new common.MaxTimeTerminationStrategy(10),
      delayStrategy: new common.FixedTimeDelayStrategy(0.05),
    };
    const workRequests = new workrequests.WorkRequestClient({ authenticationDetailsProvider: provider });
    const waiters = blockstorage.createWaiters(workRequests, waiterConfig);
    const { Available, Terminated } = core.models.Volume.LifecycleState;
    const clone = async () => {
      const { volume } = await blockstorage.createVolume({ createVolumeDetails: cloneDetails() });
      expect((await waiters.forVolume({ volumeId: volume.id }, Available))?.volume.lifecycleState).toBe(
        "AVAILABLE",
      );
      await blockstorage.deleteVolume({ volumeId: volume.id });
      return volume.id;
    };
    const kept = await clone();
    expect((await waiters.forVolume({ volumeId: kept }, Terminated))?.volume.lifecycleState).toBe(
      "TERMINATED",
    );

    emu.settings.delays.terminatedRetentionMs = 0;
    const forgotten = await clone();
    // genericTerminalConditionWaiter returns genericWaiter's promise un-awaited inside its try,
    // so its allow404 catch never runs: the waiter for TERMINATED rejects with the 404.
    await expect(waiters.forVolume({ volumeId: forgotten }, Terminated)).rejects.toMatchObject({
      statusCode: 404,
      serviceCode: "NotAuthorizedOrNotFound",
    });
  }, 20_000);

  it("close() unmounts, releases and removes everything a careless caller left behind", async () => {
    const emu = await startOciEmulator(emulatorOptions());
    const { blockstorage, compute } = clients(emu);
    const attach = async (type: "paravirtualized" | "iscsi", device: string) => {
      const { volume } = await blockstorage.createVolume({ createVolumeDetails: cloneDetails() });
      await pollUntil(
        () => blockstorage.getVolume({ volumeId: volume.id }),
        (r) => r.volume.lifecycleState === "AVAILABLE",
      );
      const { volumeAttachment } = await compute.attachVolume({
        attachVolumeDetails: { type, instanceId: INSTANCE, volumeId: volume.id, device },
      });
      return pollUntil(
        () => compute.getVolumeAttachment({ volumeAttachmentId: volumeAttachment.id }),
        (r) => r.volumeAttachment.lifecycleState === "ATTACHED",
      );
    };
    await attach("paravirtualized", "/dev/oracleoci/oraclevdc"); // left attached
    const iscsi = await attach("iscsi", "/dev/oracleoci/oraclevdd");
    expect(iscsi.volumeAttachment).toMatchObject({ attachmentType: "iscsi", port: 3260 });
    const mountPoint = await mkdtemp(join(workDir, "mnt-"));
    await run("mount", ["-o", "ro", emu.hostPathOf("/dev/oracleoci/oraclevdd"), mountPoint]);
    await compute.detachVolume({ volumeAttachmentId: iscsi.volumeAttachment.id }); // detached while mounted
    await pollUntil(
      () => compute.getVolumeAttachment({ volumeAttachmentId: iscsi.volumeAttachment.id }),
      (r) => r.volumeAttachment.lifecycleState === "DETACHED",
    );
    expect(await ourLoopDevices(emu)).toHaveLength(2);

    const final = await emu.close();
    expect(final.loopDevices).toEqual([]);
    expect(final.problems).toEqual([
      expect.stringMatching(/was detached while \/dev\/loop\d+ was mounted/),
      expect.stringMatching(/still mounted at .*mnt-.* when the emulator closed/),
    ]);
    expect(await ourLoopDevices(emu)).toEqual([]);
    await expect(run("findmnt", [mountPoint])).rejects.toThrow();
    await expect(stat(emu.stateDir)).rejects.toThrow();
  }, 20_000);
});

/** CreateVolume details for a clone of the newest production backup (the one with an image). */
function cloneDetails(): core.models.CreateVolumeDetails {
  return {
    compartmentId: COMPARTMENT,
    availabilityDomain: AD,
    freeformTags: { "attest-run": "test" },
    sourceDetails: { type: "volumeBackup", id: IMAGE_BACKUP },
  };
}
