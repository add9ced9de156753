/** The `docker` runtime: one container per drill, built on testcontainers and dockerode. */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { basename, resolve } from "node:path";
import type { StartedTestContainer } from "testcontainers";
import type { Config } from "../../config/schema.js";
import { describeError, UsageError, VerifierError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { freeLoopbackPort } from "../../util/net.js";
import { lastLines } from "../../util/process.js";
import { abortReason } from "../../util/retry.js";
import type { ManagedRuntime } from "../registry.js";
import { chooseMajor, type Sandbox, type SandboxSpec, type SweepReport } from "../runtime.js";
import { LABEL, ownedByThisProcess, ownerIsDead, sandboxContainer } from "./docker-container.js";
import { connectEngine, type DockerEngine, declaredMajor, inspectImage, pullImage } from "./docker-engine.js";
import { DockerSandbox, LAYOUT, type MountedInput, removeContainer, SANDBOX_USER } from "./docker-sandbox.js";

/** The `sandbox.docker` section of the configuration. */
export type DockerRuntimeConfig = Config["sandbox"]["docker"];

/** Majors looked for when the image name is a `{major}` template. */
const CANDIDATE_MAJORS: readonly number[] = [10, 11, 12, 13, 14, 15, 16, 17, 18];
const STARTUP_TIMEOUT_MS = 60_000;
const PULL_TIMEOUT_MS = 15 * 60_000;

/** Creates the docker runtime; the engine is contacted on first use, so a missing engine fails the drill, not the run. */
export async function createDockerRuntime(
  config: DockerRuntimeConfig,
  logger: Logger,
): Promise<ManagedRuntime> {
  // no reaper container (none can be pulled here, and Attest sweeps by its own labels);
  // with host networking the engine's host is this machine's loopback
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
  process.env.TESTCONTAINERS_HOST_OVERRIDE ??= "127.0.0.1";
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
  readonly #memoryBytes: number | undefined;
  readonly #logger: Logger;
  readonly #live = new Set<DockerSandbox>();
  #engine: Promise<DockerEngine> | undefined;
  #majors: Promise<number[]> | undefined;
  #counter = 0;

  constructor(config: DockerRuntimeConfig, logger: Logger) {
    this.#config = Object.freeze({ ...config });
    this.#memoryBytes = config.memory ? parseMemory(config.memory) : undefined;
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

    const inputs: MountedInput[] = spec.inputs.map((input, i) => {
      const hostPath = resolve(input.hostPath);
      if (!existsSync(hostPath)) throw new VerifierError(`sandbox input ${hostPath} does not exist`);
      return { hostPath, containerPath: `${LAYOUT.inputs}/${i + 1}/${basename(hostPath) || "input"}` };
    });
    const port = await freeLoopbackPort();
    const password = randomBytes(18).toString("base64url");
    const slug = spec.labels.run.replace(/[^a-zA-Z0-9_.-]/g, "-").slice(0, 60);
    const name = `attest-${slug}-${++this.#counter}-${randomBytes(3).toString("hex")}`;

    const t0 = performance.now();
    let createdId: string | undefined;
    let started: StartedTestContainer;
    try {
      started = await sandboxContainer({
        name,
        image,
        labels: spec.labels,
        network: this.#config.network,
        port,
        inputs,
        ...(this.#memoryBytes !== undefined ? { memoryBytes: this.#memoryBytes } : {}),
        ...(this.#config.cpus !== undefined ? { cpus: this.#config.cpus } : {}),
        tmpfs: this.#config.tmpfs,
        startupTimeoutMs: STARTUP_TIMEOUT_MS,
        onCreated: (id) => {
          createdId = id;
        },
      }).start();
    } catch (err) {
      if (createdId) await removeContainer(engine.docker, createdId).catch(() => {});
      throw new VerifierError(`could not start a sandbox container from ${image}: ${describeError(err)}`, {
        cause: err,
      });
    }
    const t1 = performance.now();
    const sandbox = new DockerSandbox({
      id: name,
      docker: engine.docker,
      started,
      image,
      pgMajor: major,
      network: this.#config.network,
      hostPort: port,
      innerPort: this.#config.network === "host" ? port : 5432,
      password,
      inputs,
      ...(this.#config.memory ? { memory: this.#config.memory } : {}),
      onDestroyed: () => this.#live.delete(sandbox),
    });
    this.#live.add(sandbox);
    try {
      if (signal?.aborted) throw abortReason(signal);
      await this.#prepare(sandbox, inputs, password);
      const t2 = performance.now();
      if (spec.mode === "init") {
        await sandbox.exec(
          "initdb",
          [
            "-D",
            sandbox.dataDir,
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            `--pwfile=${LAYOUT.pwfile}`,
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
          ],
          { timeoutMs: 120_000, signal },
        );
        if (this.#config.network === "bridge") {
          // the engine's port forwarder connects from the bridge gateway, not from loopback
          const hba = "host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n";
          await sandbox.runScript(`printf '%s' "$1" >> ${sandbox.dataDir}/pg_hba.conf`, [hba]);
        }
      }
      const t3 = performance.now();
      if (spec.mode === "init") {
        await sandbox.start({
          timeoutMs: 60_000,
          signal,
          settings: { wal_level: "minimal", max_wal_senders: "0" },
        });
      }
      const t4 = performance.now();
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

  /** Hands /sandbox to the sandbox user, checks the server's major and the inputs, copies the secrets in. */
  async #prepare(sandbox: DockerSandbox, inputs: readonly MountedInput[], password: string): Promise<void> {
    const root = await sandbox.runAsRoot(
      `mkdir -p ${LAYOUT.base} && chown ${SANDBOX_USER}:${SANDBOX_USER} ${LAYOUT.base} && chmod 0700 ${LAYOUT.base} && postgres --version`,
    );
    const found = Number(/\(PostgreSQL\)\s+(\d+)/.exec(root.stdout)?.[1]);
    if (found !== sandbox.pgMajor) {
      throw new VerifierError(
        `image ${sandbox.image} runs ${root.stdout.trim() || "no postgres"}, expected PostgreSQL ${sandbox.pgMajor}`,
      );
    }
    // one exec: private directories, the password files (the secret comes through stdin, never
    // a command line), the sandbox user's uid, and which inputs it cannot read
    const check = await sandbox.runScript(
      `umask 077; mkdir -p ${LAYOUT.data} ${LAYOUT.sockets} ${LAYOUT.pids} || exit 1
       IFS= read -r pw || exit 1
       printf '*:*:*:postgres:%s\\n' "$pw" >${LAYOUT.pgpass} && printf '%s\\n' "$pw" >${LAYOUT.pwfile} || exit 1
       id -u
       for p; do if [ -d "$p" ]; then { [ -r "$p" ] && [ -x "$p" ]; } || echo "$p"; else [ -r "$p" ] || echo "$p"; fi; done`,
      inputs.map((i) => i.containerPath),
      30_000,
      `${password}\n`,
    );
    if (check.code !== 0) throw new VerifierError(`sandbox setup failed: ${lastLines(check.stderrTail, 3)}`);
    const [uid, ...unreadable] = check.stdout.trim().split("\n");
    const denied = inputs.find((i) => unreadable.includes(i.containerPath));
    if (denied) {
      throw new VerifierError(
        `${denied.hostPath} is not readable by the sandbox user ${SANDBOX_USER} (uid ${uid} in the container); grant it read access (o+r)`,
      );
    }
  }

  /** Destroys every sandbox of this process, including one whose provisioning is under way. */
  async destroyAll(): Promise<void> {
    await Promise.allSettled([...this.#live].map((s) => s.destroy()));
    const engine = await this.#engine?.catch(() => undefined);
    if (!engine) return;
    const mine = await this.#listSandboxes(engine).catch(() => []);
    await Promise.allSettled(
      mine.filter((c) => ownedByThisProcess(c.Labels)).map((c) => removeContainer(engine.docker, c.Id)),
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
    return report;
  }

  #listSandboxes(engine: DockerEngine) {
    return engine.docker.listContainers({ all: true, filters: { label: [LABEL.run] } });
  }
}
