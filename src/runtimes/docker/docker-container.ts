/** The sandbox container's definition: a hardened container whose main process only keeps it alive. */
import { hostname } from "node:os";
import type Docker from "dockerode";
import { processAlive, processStartTime } from "../../util/os-user.js";
import { LAYOUT, type MountedInput, SANDBOX_USER } from "./docker-sandbox.js";

/** Labels every sandbox container carries. */
export const LABEL = {
  run: "attest.run",
  source: "attest.source",
  backup: "attest.backup",
  started: "attest.started",
  pid: "attest.pid",
  pidStart: "attest.pid.start",
  host: "attest.host",
  /** The sandbox's host directory (socket, data, private copies), removed with the container. */
  dir: "attest.dir",
} as const;

/** The network modes a sandbox can have: none (the default) or the host's (an opt-in). */
export const NETWORK_MODES = ["none", "host"] as const;
/** A sandbox's network mode. */
export type NetworkMode = (typeof NETWORK_MODES)[number];

/** What a container is made of. */
export interface ContainerPlan {
  name: string;
  image: string;
  labels: { run: string; source: string; backup: string };
  network: NetworkMode;
  inputs: readonly MountedInput[];
  /** Host directories bound into the container. */
  host: { dir: string; sandbox: string; sockets: string; copies: string; copiesView?: string };
  memoryBytes: number;
  pids: number;
  cpus?: number;
  /** tmpfs data directory: off, on, or on with a size (e.g. "64m"). */
  tmpfs: boolean | string;
  /** Paths the image declares as VOLUME: each gets an empty read-only noexec tmpfs, not a volume. */
  imageVolumes?: readonly string[];
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

/** tmpfs options: private, no devices or setuid, and a size when one is given. */
function tmpfsOptions(mode: string, size?: string): string {
  const s = size ? `,size=${size.trim().replace(/i?b$/i, "")}` : "";
  // noexec: nothing the sandbox writes is ever mapped as code (see noexec-mounts.ts)
  return `rw,nosuid,nodev,noexec,mode=${mode}${s}`;
}

/**
 * The engine's create options. The main process is `sleep infinity` under docker-init, not
 * postgres: the server runs through exec so that it can be stopped and started again inside the
 * same container (physical restores) and never depends on an image's entrypoint. Every process
 * runs as the image's unprivileged postgres user with no capabilities and no way to gain any;
 * the root filesystem is read-only, and only /sandbox (data), its socket directory, /tmp and
 * /dev/shm are writable. No network unless the configuration opts into the host's.
 */
export function containerOptions(plan: ContainerPlan): Docker.ContainerCreateOptions {
  const binds = (hostPath: string, target: string, readOnly: boolean) => ({
    Type: "bind" as const,
    Source: hostPath,
    Target: target,
    ReadOnly: readOnly,
  });
  const tmpfs: Record<string, string> = { "/tmp": tmpfsOptions("1777", "256m") };
  // the data directory's own tmpfs: 1777 needs no root to hand it over, and every process in the
  // container is the sandbox user anyway (initdb makes the 0700 cluster directory inside)
  if (plan.tmpfs) {
    tmpfs[LAYOUT.dataMount] = tmpfsOptions("1777", typeof plan.tmpfs === "string" ? plan.tmpfs : undefined);
  }
  const mounts = [
    // /sandbox holds the socket directory (the host connects there), the log and pid files
    binds(plan.host.sandbox, LAYOUT.base, false),
    // on its own mount: the container cannot swap it (see lockSockets)
    binds(plan.host.sockets, LAYOUT.sockets, false),
    // A read-only bind is remounted by the engine with only the flags it asks for, which drops
    // noexec: as root the source is instead a read-only noexec bind made on the host
    // (noexec-mounts.ts), bound as it is, so the container keeps ro,nosuid,nodev,noexec.
    plan.host.copiesView
      ? binds(plan.host.copiesView, LAYOUT.copies, false)
      : binds(plan.host.copies, LAYOUT.copies, true),
    // structured mounts, not "src:dst:ro" strings: backup names often carry colons (timestamps)
    ...plan.inputs.map((i) =>
      i.bindSource ? binds(i.bindSource, i.containerPath, false) : binds(i.hostPath, i.containerPath, true),
    ),
  ];
  // an image's VOLUME would be an anonymous volume, writable and executable whatever the rest:
  // an empty read-only noexec tmpfs takes its place (nothing of Attest's lives there)
  const taken = new Set([...mounts.map((m) => m.Target), ...Object.keys(tmpfs)]);
  for (const v of plan.imageVolumes ?? []) {
    if (!taken.has(v)) tmpfs[v] = "ro,nosuid,nodev,noexec,mode=0755,size=64k";
  }
  return {
    name: plan.name,
    Image: plan.image,
    User: SANDBOX_USER,
    Entrypoint: ["sleep", "infinity"],
    Cmd: [],
    // only what the sandbox needs; nothing of Attest's own environment
    Env: ["LANG=C.UTF-8"],
    WorkingDir: "/",
    Labels: { ...ownerLabels(plan.labels), [LABEL.dir]: plan.host.dir },
    HostConfig: {
      Init: true,
      NetworkMode: plan.network,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      ReadonlyRootfs: true,
      Mounts: mounts,
      Tmpfs: tmpfs,
      // PostgreSQL's dynamic shared memory lives in /dev/shm; the engine's default 64 MB is too small
      ShmSize: 1024 ** 3,
      PidsLimit: plan.pids,
      // no swap beyond the limit: an over-large restore is killed, not slowed to a crawl
      Memory: plan.memoryBytes,
      MemorySwap: plan.memoryBytes,
      ...(plan.cpus !== undefined ? { NanoCpus: Math.round(plan.cpus * 1e9) } : {}),
    },
  };
}
