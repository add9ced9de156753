/**
 * An OCI Block Storage / Compute emulator that speaks the SDK's real HTTP protocol on loopback:
 * signed requests, OCI JSON shapes and errors, moving lifecycle states, and clones backed by
 * ext4 images attached as loop devices. Point a client at it with `client.endpoint = emu.endpoint`.
 */
import { mkdir, mkdtemp } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { createAttachmentRoutes } from "./attachment-operations.js";
import { BackgroundTasks } from "./background-tasks.js";
import { cleanUpHost } from "./host-cleanup.js";
import { LoopDevices } from "./host-devices.js";
import { createRequestHandler } from "./request-handler.js";
import type { EmulatorCore } from "./routing.js";
import { SignatureVerifier } from "./signature.js";
import { ResourceStore } from "./store.js";
import type {
  EmulatorSettings,
  EmulatorState,
  FaultRule,
  OciEmulatorOptions,
  RequestLogEntry,
} from "./types.js";
import { createVolumeRoutes } from "./volume-operations.js";

/** Delays short enough for tests, long enough that callers must really poll. */
const DEFAULT_DELAYS = {
  provisionMs: 200,
  attachMs: 100,
  detachMs: 100,
  terminateMs: 100,
  terminatedRetentionMs: 60_000,
};

/** A running emulator. */
export interface OciEmulator extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`, to assign to `client.endpoint` (the SDK appends `/20160918`). */
  readonly endpoint: string;
  readonly stateDir: string;
  /** The directory standing in for /dev/oracleoci. */
  readonly deviceRoot: string;
  /** Injected failures, consumed in order; push to add one. */
  readonly faults: FaultRule[];
  /** Behaviour a test may change at any time. */
  readonly settings: EmulatorSettings;
  /** Every request seen, in arrival order. */
  readonly requests: readonly RequestLogEntry[];
  /** Where an attachment's `device` (e.g. /dev/oracleoci/oraclevdb) appears on this host. */
  hostPathOf(device: string): string;
  /** A snapshot of volumes, attachments, loop devices in use and problems seen. */
  state(): EmulatorState;
  /** Stops the server, releases every loop device and removes the state dir; returns the final state. */
  close(): Promise<EmulatorState>;
}

/** Starts an emulator on 127.0.0.1 with a free port. */
export async function startOciEmulator(options: OciEmulatorOptions): Promise<OciEmulator> {
  const stateDir = await mkdtemp(join(options.tmpDir ?? tmpdir(), "attest-oci-emulator-"));
  const deviceRoot = options.deviceRoot ?? join(stateDir, "dev", "oracleoci");
  await mkdir(deviceRoot, { recursive: true });
  const settings: EmulatorSettings = {
    cloneOutcome: options.cloneOutcome ?? "available",
    hydrationFactor: options.hydrationFactor ?? 1,
    delays: { ...DEFAULT_DELAYS, ...options.delays },
    maxClockSkewMs: options.maxClockSkewMs ?? 5 * 60_000,
  };
  const store = new ResourceStore(options.region ?? "sa-saopaulo-1");
  for (const seed of options.backups ?? []) store.addBackup(seed);
  for (const seed of options.volumes ?? []) store.addVolume(seed);
  for (const seed of options.instances ?? []) store.addInstance(seed);
  const tasks = new BackgroundTasks((message) => store.problems.push(message));
  const core: EmulatorCore = { store, tasks, loops: new LoopDevices(), settings, stateDir, deviceRoot };
  const faults: FaultRule[] = [];
  const requests: RequestLogEntry[] = [];
  const serve = createRequestHandler({
    routes: [...createVolumeRoutes(core), ...createAttachmentRoutes(core)],
    verifier: new SignatureVerifier(options.trustedKeys, () => settings.maxClockSkewMs),
    faults,
    requests,
    problems: store.problems,
  });

  const server = createServer((req, res) => {
    void serve(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  let closing: Promise<EmulatorState> | undefined;
  const close = (): Promise<EmulatorState> => {
    closing ??= (async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await tasks.close();
      const final = store.snapshot(core.loops.list().map((l) => l.device));
      const leftovers = await cleanUpHost(core);
      return { ...final, loopDevices: leftovers, problems: [...store.problems] };
    })();
    return closing;
  };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    stateDir,
    deviceRoot,
    faults,
    settings,
    requests,
    hostPathOf: (device) => join(deviceRoot, basename(device)),
    state: () => store.snapshot(core.loops.list().map((l) => l.device)),
    close,
    [Symbol.asyncDispose]: async () => {
      await close();
    },
  };
}
