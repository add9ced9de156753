/** The `docker` runtime: one hardened container per drill, driven through the engine API (dockerode). */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { tmpdir, totalmem } from "node:os";
import { basename, resolve } from "node:path";
import type { Config } from "../../config/schema.js";
import { describeError, UsageError, VerifierError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { lastLines, ProcessError } from "../../util/process.js";
import { abortReason } from "../../util/retry.js";
import type { ManagedRuntime } from "../registry.js";
import { chooseMajor, type Sandbox, type SandboxSpec, type SweepReport } from "../runtime.js";
import { containerOptions, LABEL, ownedByThisProcess, ownerIsDead } from "./docker-container.js";
import { connectEngine, type DockerEngine, declaredMajor, inspectImage, pullImage } from "./docker-engine.js";
import {
  createHostDir,
  type HostDir,
  handOver,
  makeHostDirNoexec,
  processIds,
  removeHostDir,
  type SandboxIds,
  sweepHostDirs,
} from "./docker-host-dir.js";
import { firstUnreadable, privateCopy } from "./docker-inputs.js";
import { DockerSandbox, LAYOUT, type MountedInput, removeContainer, SANDBOX_USER } from "./docker-sandbox.js";

/** The `sandbox.docker` section of the configuration. */
export type DockerRuntimeConfig = Config["sandbox"]["docker"];

/** Majors looked for when the image name is a `{major}` template. */
const CANDIDATE_MAJORS: readonly number[] = [10, 11, 12, 13, 14, 15, 16, 17, 18];
const PULL_TIMEOUT_MS = 15 * 60_000;
/** How long a private copy of an unreadable input may take at most (the drill's own timeout still applies). */
const COPY_TIMEOUT_MS = 4 * 3600_000;
/** The exit code of the setup script when the image runs another PostgreSQL major. */
const WRONG_MAJOR = 90;

/** Creates the docker runtime; the engine is contacted on first use, so a missing engine fails the drill, not the run. */
export async function createDockerRuntime(
  config: DockerRuntimeConfig,
  logger: Logger,
): Promise<ManagedRuntime> {
  return new DockerRuntime(config, logger);
}

/** Parses a memory size such as `512m`, `2g`, `1.5GiB` or a byte count. */
export function parseMemory(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new UsageError(`sandbox.docker.memory: "${text}" is not a size (e.g. 512m, 2g)`);
  const power = ["", "k", "m", "g", "t"].indexOf((m[2] ?? "").toLowerCase());
  return Math.round(Number(m[1]) * 1024 ** power);
}

/** The docker runtime. */
export class DockerRuntime implements ManagedRuntime {
  readonly name = "docker";
  readonly #config: Readonly<DockerRuntimeConfig>;
  readonly #memoryBytes: number;
  readonly #memoryText: string;
  readonly #root: string;
  readonly #logger: Logger;
  readonly #live = new Set<DockerSandbox>();
  readonly #volumes = new Map<string, string[]>();
  #engine: Promise<DockerEngine> | undefined;
  #majors: Promise<number[]> | undefined;
  #counter = 0;

  constructor(config: DockerRuntimeConfig, logger: Logger) {
    this.#config = Object.freeze({ ...config });
    // unset: half the host's memory, so that a hostile or oversized restore is killed before the
    // host swaps or its own services are; a tmpfs data directory counts against it too
    this.#memoryBytes = config.memory ? parseMemory(config.memory) : Math.floor(totalmem() / 2);
    this.#memoryText =
      config.memory ?? `${Math.round(this.#memoryBytes / 1024 ** 2)}m (half the host's memory)`;
    this.#root = resolve(config.work_dir ?? tmpdir());
    this.#logger = logger;
  }

  #connect(): Promise<DockerEngine> {
    this.#engine ??= connectEngine(this.#logger).catch((err: unknown) => {
      this.#engine = undefined; // the engine may be started before the next drill
      throw err;
    });
    return this.#engine;
  }

  get #templated(): boolean {
    return this.#config.image.includes("{major}");
  }

  /** The image for a major (the configured image when it is not a template). */
  imageFor(major: number): string {
    return this.#config.image.replaceAll("{major}", String(major));
  }

  availableMajors(): Promise<number[]> {
    this.#majors ??= this.#presentMajors().catch((err: unknown) => {
      this.#majors = undefined;
      throw err;
    });
    return this.#majors;
  }

  async #presentMajors(): Promise<number[]> {
    const { docker } = await this.#connect();
    if (this.#templated) {
      const present = await Promise.all(
        CANDIDATE_MAJORS.map(async (m) => ((await inspectImage(docker, this.imageFor(m))) ? m : undefined)),
      );
      return present.filter((m): m is number => m !== undefined);
    }
    const info = await inspectImage(docker, this.#config.image);
    if (!info) return [];
    const major = declaredMajor(this.#config.image, info);
    if (major === undefined) {
      this.#logger.warn("sandbox image does not declare its PostgreSQL major", { image: this.#config.image });
      return [];
    }
    return [major];
  }

  /** Picks the image for a spec: a present one that fits, else the wanted one pulled (when allowed). */
  async #resolveImage(
    spec: SandboxSpec,
    engine: DockerEngine,
    signal?: AbortSignal,
  ): Promise<{ image: string; major: number }> {
    const choice = chooseMajor(spec.pgMajor, await this.availableMajors(), spec.allowNewer);
    if ("major" in choice) return { image: this.imageFor(choice.major), major: choice.major };
    if (this.#templated && spec.pgMajor < 1) {
      throw new VerifierError(`${choice.error}; no image present for ${this.#config.image}`);
    }
    const wanted = this.imageFor(spec.pgMajor);
    const info = await inspectImage(engine.docker, wanted);
    if (info) {
      // a fixed image that is present but of another major
      const major = declaredMajor(wanted, info);
      throw new VerifierError(
        major === undefined
          ? `image ${wanted} does not declare its PostgreSQL major (label attest.postgres.major, env PG_MAJOR or a numeric tag); use an image template with {major}`
          : `${choice.error} (image ${wanted} is PostgreSQL ${major})`,
      );
    }
    if (!this.#config.pull) {
      throw new VerifierError(
        `image ${wanted} not present and sandbox.docker.pull is false (${choice.error})`,
      );
    }
    await pullImage(engine.docker, wanted, this.#logger, {
      timeoutMs: PULL_TIMEOUT_MS,
      ...(signal ? { signal } : {}),
    });
    this.#majors = undefined;
    if (this.#templated) return { image: wanted, major: spec.pgMajor };
    const pulled = await this.availableMajors();
    const again = chooseMajor(spec.pgMajor, pulled, spec.allowNewer);
    if ("error" in again) throw new VerifierError(`${again.error} (image ${wanted})`);
    return { image: wanted, major: again.major };
  }

  async provision(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox> {
    if (spec.dataDir) {
      throw new VerifierError(
        "the docker runtime does not run on a host data directory; use a volume runtime",
      );
    }
    const engine = await this.#connect();
    const { image, major } = await this.#resolveImage(spec, engine, signal);
    if (signal?.aborted) throw abortReason(signal);

    const mounted: MountedInput[] = spec.inputs.map((input, i) => {
      const hostPath = resolve(input.hostPath);
      if (!existsSync(hostPath)) throw new VerifierError(`sandbox input ${hostPath} does not exist`);
      return { hostPath, containerPath: `${LAYOUT.inputs}/${i + 1}/${basename(hostPath) || "input"}` };
    });
    // what the sandbox reads: the mounts, or private copies of those its user cannot read
    const visible = mounted.map((m) => ({ ...m }));
    const password = randomBytes(18).toString("base64url");
    const slug = spec.labels.run.replace(/[^a-zA-Z0-9_.-]/g, "-").slice(0, 60);
    const name = `attest-${slug}-${++this.#counter}-${randomBytes(3).toString("hex")}`;
    const tmpfs = this.#config.tmpfs;

    const t0 = performance.now();
    const host = createHostDir(this.#root);
    let containerId: string | undefined;
    let noexec = false;
    try {
      noexec = await makeHostDirNoexec(host, mounted);
      const container = await engine.docker.createContainer(
        containerOptions({
          name,
          image,
          labels: spec.labels,
          network: this.#config.network,
          inputs: mounted,
          host,
          memoryBytes: this.#memoryBytes,
          pids: this.#config.max_processes,
          ...(this.#config.cpus !== undefined ? { cpus: this.#config.cpus } : {}),
          tmpfs,
          imageVolumes: await this.#imageVolumes(engine, image),
        }),
      );
      containerId = container.id;
      await container.start();
    } catch (err) {
      if (containerId) await removeContainer(engine.docker, containerId).catch(() => {});
      await removeHostDir(host.dir).catch(() => {});
      throw new VerifierError(`could not start a sandbox container from ${image}: ${describeError(err)}`, {
        cause: err,
      });
    }
    const t1 = performance.now();
    const sandbox = new DockerSandbox({
      id: name,
      docker: engine.docker,
      containerId,
      image,
      pgMajor: major,
      network: this.#config.network,
      password,
      inputs: visible,
      host,
      tmpfs: tmpfs !== false,
      memory: this.#memoryText,
      onDestroyed: () => this.#live.delete(sandbox),
    });
    this.#live.add(sandbox);
    try {
      if (signal?.aborted) throw abortReason(signal);
      const ids = await this.#sandboxIds(engine, sandbox);
      // what the container sees, not what was asked: a root Attest whose mounts the engine does
      // not see (another mount namespace) gets no noexec either, and the record says so
      if (!noexec || (await this.#noexecSeen(engine, sandbox)) === false)
        sandbox.notes.push(
          `the sandbox's directories are not mounted noexec in the container (${noexec ? "the engine does not see Attest's mounts" : "Attest does not run as root"}): a library shipped in the backup is not blocked from loading`,
        );
      handOver(host, ids);
      sandbox.ids = ids;
      await this.#copyUnreadable(sandbox, mounted, visible, host, ids, signal);
      const t2 = performance.now();
      await this.#setUp(sandbox, spec.mode, password, signal);
      const t3 = performance.now();
      if (spec.mode === "init") {
        await sandbox.start({
          timeoutMs: 60_000,
          signal,
          settings: { wal_level: "minimal", max_wal_senders: "0" },
        });
      }
      const t4 = performance.now();
      sandbox.confinement = `docker container: network ${this.#config.network}, uid ${ids.uid} (no root), no capabilities, no-new-privileges, read-only root filesystem, at most ${this.#config.max_processes} processes, memory limit ${this.#memoryText}`;
      if (this.#config.network === "host") {
        sandbox.notes.push(
          "sandbox network: host (sandbox.docker.network opt-in): the restored cluster and the tools in its sandbox shared the host's network and could reach its services",
        );
      }
      sandbox.startup = {
        containerMs: Math.round(t1 - t0),
        setupMs: Math.round(t2 - t1),
        initdbMs: Math.round(t3 - t2),
        serverMs: Math.round(t4 - t3),
        totalMs: Math.round(t4 - t0),
      };
      this.#logger.debug("docker sandbox ready", { sandbox: name, image, ...sandbox.startup });
      return sandbox;
    } catch (err) {
      await sandbox.destroy().catch(() => {});
      throw err;
    }
  }

  /** The uid, gid and groups the container runs as: from its init process on this host, else asked inside. */
  /** Paths the image declares as VOLUME (looked up once per image). */
  async #imageVolumes(engine: DockerEngine, image: string): Promise<string[]> {
    let v = this.#volumes.get(image);
    if (!v) {
      v = Object.keys((await inspectImage(engine.docker, image))?.Config?.Volumes ?? {});
      this.#volumes.set(image, v);
    }
    return v;
  }

  /** Whether /sandbox is noexec as the container sees it; undefined when its /proc is not this host's. */
  async #noexecSeen(engine: DockerEngine, sandbox: DockerSandbox): Promise<boolean | undefined> {
    const pid = (await engine.docker.getContainer(sandbox.containerId).inspect()).State.Pid;
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/mountinfo`, "utf8");
    } catch {
      return undefined;
    }
    const line = text.split("\n").find((l) => l.split(" ")[4] === LAYOUT.base);
    return line ? line.split(" ")[5]!.split(",").includes("noexec") : false;
  }

  async #sandboxIds(engine: DockerEngine, sandbox: DockerSandbox): Promise<SandboxIds> {
    const pid = (await engine.docker.getContainer(sandbox.containerId).inspect()).State.Pid;
    const seen = pid > 0 ? processIds(pid) : undefined;
    if (seen) return seen;
    // a remote engine: its processes are not in this host's /proc
    const r = await sandbox.runScript("id -u; id -g; id -G", [], 30_000);
    const [uid, gid, groups] = r.stdout.trim().split("\n");
    if (r.code !== 0 || !uid || !gid) {
      throw new VerifierError(`could not tell the sandbox user's uid: ${lastLines(r.stderrTail, 2)}`);
    }
    return {
      uid: Number(uid),
      gid: Number(gid),
      groups: (groups ?? "").split(" ").filter(Boolean).map(Number),
    };
  }

  /** Makes private read-only copies of the inputs the sandbox user cannot read, and says so in the drill's notes. */
  async #copyUnreadable(
    sandbox: DockerSandbox,
    mounted: readonly MountedInput[],
    visible: MountedInput[],
    host: HostDir,
    ids: SandboxIds,
    signal?: AbortSignal,
  ): Promise<void> {
    for (const [i, m] of mounted.entries()) {
      const blocked = await firstUnreadable(m.hostPath, ids).catch(() => m.hostPath);
      if (!blocked) continue;
      const copy = await privateCopy(m.hostPath, host.copies, i + 1, ids, {
        timeoutMs: COPY_TIMEOUT_MS,
        ...(signal ? { signal } : {}),
      });
      visible[i]!.containerPath = LAYOUT.copies + copy.slice(host.copies.length);
      const what = blocked === m.hostPath ? "" : ` (${blocked} is not)`;
      sandbox.notes.push(
        `${m.hostPath} is not readable by the sandbox user ${SANDBOX_USER} (uid ${ids.uid})${what}: the drill read a private read-only copy made in the sandbox's directory; the backup itself was not changed`,
      );
      this.#logger.info("copied an input the sandbox user cannot read", { input: m.hostPath, uid: ids.uid });
    }
  }

  /**
   * One exec as the sandbox user: checks the server's major, makes the private directories,
   * writes the password files (the secret comes through stdin, never a command line) and, for
   * an `init` sandbox, copies the image's template cluster of this major or, without one, runs
   * initdb. (The template's password is not this one: the server listens on its socket only,
   * where the sandbox's own pg_hba trusts local connections, so no password is ever asked.)
   */
  async #setUp(sandbox: DockerSandbox, mode: SandboxSpec["mode"], password: string, signal?: AbortSignal) {
    const script = `v=$(postgres --version 2>&1)
case "$v" in *"(PostgreSQL) $1"|*"(PostgreSQL) $1"[!0-9]*) ;; *) printf '%s\\n' "\${v:-no postgres}"; exit ${WRONG_MAJOR};; esac
umask 077
mkdir -p ${LAYOUT.dataMount} || exit 1
IFS= read -r pw || exit 1
printf '*:*:*:postgres:%s\\n' "$pw" >${LAYOUT.pgpass} && printf '%s\\n' "$pw" >${LAYOUT.pwfile} || exit 1
[ "$2" = init ] || exit 0
t=${LAYOUT.template}
[ "$(cat "$t/PG_VERSION" 2>/dev/null)" = "$1" ] && exec cp -a "$t" ${LAYOUT.data}
exec initdb -D ${LAYOUT.data} -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile=${LAYOUT.pwfile} -E UTF8 --locale=C.UTF-8 --no-sync >&2`;
    const what = mode === "init" ? "initdb" : "sandbox setup";
    const r = await sandbox.exec("sh", ["-c", script, "setup", String(sandbox.pgMajor), mode], {
      stdin: `${password}\n`,
      timeoutMs: 120_000,
      allowFailure: true,
      ...(signal ? { signal } : {}),
    });
    if (r.code === WRONG_MAJOR) {
      throw new VerifierError(
        `image ${sandbox.image} runs ${r.stdout.trim()}, expected PostgreSQL ${sandbox.pgMajor}`,
      );
    }
    if (r.code !== 0) {
      throw new ProcessError(`${what} exited with code ${r.code}: ${lastLines(r.stderrTail, 3)}`, r);
    }
  }

  /** Destroys every sandbox of this process, including one whose provisioning is under way. */
  async destroyAll(): Promise<void> {
    await Promise.allSettled([...this.#live].map((s) => s.destroy()));
    const engine = await this.#engine?.catch(() => undefined);
    if (!engine) return;
    const mine = await this.#listSandboxes(engine).catch(() => []);
    await Promise.allSettled(
      mine
        .filter((c) => ownedByThisProcess(c.Labels))
        .map(async (c) => {
          await removeContainer(engine.docker, c.Id);
          const dir = c.Labels[LABEL.dir];
          if (dir) await removeHostDir(dir);
        }),
    );
  }

  async sweep(): Promise<SweepReport> {
    const report: SweepReport = { removed: [], kept: [] };
    let engine: DockerEngine;
    try {
      engine = await this.#connect();
    } catch (err) {
      // nothing can be swept without an engine; the first drill reports it
      this.#logger.warn("docker sweep skipped", { error: describeError(err) });
      return report;
    }
    for (const c of await this.#listSandboxes(engine)) {
      const name = c.Names[0]?.replace(/^\//, "") ?? c.Id.slice(0, 12);
      if (!ownerIsDead(c.Labels)) {
        report.kept.push(name);
        continue;
      }
      try {
        await removeContainer(engine.docker, c.Id);
        const l = c.Labels;
        const dir = l[LABEL.dir];
        if (dir) await removeHostDir(dir);
        report.removed.push(`${name} (run ${l[LABEL.run]}, ${l[LABEL.source]}/${l[LABEL.backup]})`);
        this.#logger.info("removed leftover sandbox container", { container: name, run: l[LABEL.run] });
      } catch (err) {
        this.#logger.warn("could not remove leftover sandbox container", {
          container: name,
          error: describeError(err),
        });
        report.kept.push(name);
      }
    }
    // directories a crashed run left without a container (or whose container went first)
    const dirs = await sweepHostDirs(this.#root);
    report.removed.push(...dirs.removed);
    for (const d of dirs.removed) this.#logger.info("removed leftover sandbox directory", { dir: d });
    for (const f of dirs.failed)
      this.#logger.warn("could not remove leftover sandbox directory", { error: f });
    return report;
  }

  #listSandboxes(engine: DockerEngine) {
    return engine.docker.listContainers({ all: true, filters: { label: [LABEL.run] } });
  }
}
