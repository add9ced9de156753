/** The sandbox container's definition: a testcontainers GenericContainer with Attest's settings. */
import { hostname } from "node:os";
import type { HostConfig } from "dockerode";
import { GenericContainer, Wait } from "testcontainers";
import { processAlive, processStartTime } from "../../util/os-user.js";
import { LAYOUT, type MountedInput, SANDBOX_USER } from "./docker-sandbox.js";

/** The line the container prints once its keep-alive process runs (the wait strategy's cue). */
const READY_LINE = "attest-sandbox-up";

/** Labels every sandbox container carries. */
export const LABEL = {
  run: "attest.run",
  source: "attest.source",
  backup: "attest.backup",
  started: "attest.started",
  pid: "attest.pid",
  pidStart: "attest.pid.start",
  host: "attest.host",
} as const;

/** What a container is made of. */
export interface ContainerPlan {
  name: string;
  image: string;
  labels: { run: string; source: string; backup: string };
  network: "host" | "bridge";
  /** host: the port the server listens on; bridge: the loopback port published for 5432. */
  port: number;
  inputs: readonly MountedInput[];
  memoryBytes?: number;
  cpus?: number;
  /** tmpfs data directory: off, on, or on with a size (e.g. "64m"). */
  tmpfs: boolean | string;
  startupTimeoutMs: number;
  /** Called with the id as soon as the engine created the container (so a failed start can remove it). */
  onCreated: (id: string) => void;
}

/** GenericContainer plus the few engine settings it has no builder method for. */
class SandboxContainer extends GenericContainer {
  readonly #onCreated: (id: string) => void;

  constructor(image: string, onCreated: (id: string) => void) {
    super(image);
    this.#onCreated = onCreated;
  }

  /** Merges raw HostConfig settings (Init, MemorySwap, loopback-only port bindings). */
  withHostConfig(patch: HostConfig): this {
    Object.assign(this.hostConfig, patch);
    return this;
  }

  /** Declares container ports without testcontainers' all-interfaces binding. */
  withContainerPorts(...ports: string[]): this {
    this.createOpts.ExposedPorts = Object.fromEntries(ports.map((p) => [p, {}]));
    return this;
  }

  protected override async containerCreated(containerId: string): Promise<void> {
    this.#onCreated(containerId);
  }
}

/** The owner labels of a container made by this process. */
export function ownerLabels(labels: ContainerPlan["labels"]): Record<string, string> {
  return {
    [LABEL.run]: labels.run,
    [LABEL.source]: labels.source,
    [LABEL.backup]: labels.backup,
    [LABEL.started]: new Date().toISOString(),
    [LABEL.pid]: String(process.pid),
    [LABEL.pidStart]: processStartTime(process.pid) ?? "",
    [LABEL.host]: hostname(),
  };
}

/** Whether the process that made a container (by its labels) is gone; unknown hosts count as alive. */
export function ownerIsDead(labels: Record<string, string>): boolean {
  if (labels[LABEL.host] !== hostname()) return false;
  const pid = Number(labels[LABEL.pid]);
  if (!Number.isInteger(pid) || pid <= 0) return true;
  return !processAlive(pid, labels[LABEL.pidStart] || undefined);
}

/** Whether a container (by its labels) belongs to this very process. */
export function ownedByThisProcess(labels: Record<string, string>): boolean {
  return (
    labels[LABEL.host] === hostname() &&
    labels[LABEL.pid] === String(process.pid) &&
    (labels[LABEL.pidStart] || undefined) === processStartTime(process.pid)
  );
}

/**
 * Builds the container. Its main process is `sleep infinity` under docker-init, not postgres:
 * the server runs through exec so that it can be stopped and started again inside the same
 * container (physical restores provision an empty data directory, extract into it, start the
 * server for recovery, stop it, start it again) and so that initdb/postgres never depend on an
 * image's entrypoint. docker-init reaps what killed tools leave behind and forwards signals.
 */
export function sandboxContainer(plan: ContainerPlan): GenericContainer {
  const c = new SandboxContainer(plan.image, plan.onCreated)
    .withName(plan.name)
    .withLabels(ownerLabels(plan.labels))
    .withUser(SANDBOX_USER)
    .withEntrypoint(["sh", "-c"])
    .withCommand([`echo ${READY_LINE}; exec sleep infinity`])
    .withWaitStrategy(Wait.forLogMessage(READY_LINE))
    .withStartupTimeout(plan.startupTimeoutMs)
    // structured mounts, not "src:dst:ro" strings: backup names often carry colons (timestamps)
    .withHostConfig({
      Mounts: plan.inputs.map((i) => ({
        Type: "bind",
        Source: i.hostPath,
        Target: i.containerPath,
        ReadOnly: true,
      })),
    })
    // root is needed once, to hand /sandbox to the sandbox user (chown, chmod); nothing else.
    // (no-new-privileges would be nicer still, but it leaves that root exec without capabilities;
    // with this bounding set even a setuid binary can gain no more than these two.)
    .withDroppedCapabilities("ALL")
    .withAddedCapabilities("CHOWN", "FOWNER")
    // PostgreSQL's dynamic shared memory lives in /dev/shm; the engine's default 64 MB is too small
    .withSharedMemorySize(1024 ** 3)
    .withHostConfig({ Init: true });
  if (plan.cpus !== undefined) c.withResourcesQuota({ cpu: plan.cpus });
  if (plan.memoryBytes !== undefined) {
    const bytes = Math.ceil(plan.memoryBytes);
    // no swap beyond the limit: an over-large restore is killed, not slowed to a crawl
    c.withHostConfig({ Memory: bytes, MemorySwap: bytes });
  }
  if (plan.tmpfs) {
    const size = typeof plan.tmpfs === "string" ? `,size=${plan.tmpfs.trim().replace(/i?b$/i, "")}` : "";
    c.withTmpFs({ [LAYOUT.base]: `rw,nosuid,nodev,mode=0700${size}` });
  }
  if (plan.network === "host") c.withNetworkMode("host");
  else {
    c.withNetworkMode("bridge")
      .withContainerPorts("5432/tcp")
      .withHostConfig({
        PortBindings: { "5432/tcp": [{ HostIp: "127.0.0.1", HostPort: String(plan.port) }] },
      });
  }
  return c;
}
