/** Finding the Docker engine, and making sure a sandbox image is present (pulling it when allowed). */
import { existsSync } from "node:fs";
import Docker from "dockerode";
import { describeError, VerifierError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";

/** A Docker engine that answered a ping. */
export interface DockerEngine {
  docker: Docker;
  /** Where it was found, as a DOCKER_HOST-style address (for messages). */
  address: string;
}

const DEFAULT_SOCKET = "/var/run/docker.sock";
const PING_TIMEOUT_MS = 5000;

type Candidate = { address: string; make: () => Docker };
type Strategy = (logger: Logger) => Candidate | undefined;

/** DOCKER_HOST (with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, read by docker-modem). */
const fromEnvironment: Strategy = (logger) => {
  const host = process.env.DOCKER_HOST?.trim();
  if (!host) {
    logger.debug("docker discovery: DOCKER_HOST is not set");
    return undefined;
  }
  return { address: host, make: () => new Docker() };
};

/** The default socket of a rootful engine. */
const fromDefaultSocket: Strategy = (logger) => {
  if (!existsSync(DEFAULT_SOCKET)) {
    logger.debug(`docker discovery: ${DEFAULT_SOCKET} does not exist`);
    return undefined;
  }
  return { address: `unix://${DEFAULT_SOCKET}`, make: () => new Docker({ socketPath: DEFAULT_SOCKET }) };
};

/** A rootless engine's socket under XDG_RUNTIME_DIR. */
const fromRootlessSocket: Strategy = (logger) => {
  const dir = process.env.XDG_RUNTIME_DIR;
  const socket = dir ? `${dir}/docker.sock` : undefined;
  if (!socket || !existsSync(socket)) {
    logger.debug("docker discovery: no rootless socket under XDG_RUNTIME_DIR");
    return undefined;
  }
  return { address: `unix://${socket}`, make: () => new Docker({ socketPath: socket }) };
};

const STRATEGIES: readonly Strategy[] = [fromEnvironment, fromDefaultSocket, fromRootlessSocket];

/**
 * Finds the engine: DOCKER_HOST, then the default socket, then a rootless socket; the first
 * candidate that applies must answer a ping. Attest's own environment is left as it was.
 */
export async function connectEngine(logger: Logger): Promise<DockerEngine> {
  const candidate = STRATEGIES.reduce<Candidate | undefined>((found, s) => found ?? s(logger), undefined);
  const address = candidate?.address ?? `unix://${DEFAULT_SOCKET}`;
  const unreachable = (why: string) =>
    new VerifierError(`Docker engine not reachable at ${address}; start it or use runtime: local (${why})`);
  if (!candidate) throw unreachable("no DOCKER_HOST and no socket file");
  const docker = candidate.make();
  try {
    // dockerode's ping takes an abort signal; its type declarations do not say so
    const ping = docker.ping as unknown as (opts: { abortSignal: AbortSignal }) => Promise<unknown>;
    await ping.call(docker, { abortSignal: AbortSignal.timeout(PING_TIMEOUT_MS) });
  } catch (err) {
    throw unreachable(describeError(err));
  }
  logger.debug("docker engine found", { address });
  return { docker, address };
}

/** What an image says about itself, or undefined when it is not present locally. */
export async function inspectImage(
  docker: Docker,
  image: string,
): Promise<Docker.ImageInspectInfo | undefined> {
  try {
    return await docker.getImage(image).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw new VerifierError(`could not inspect image ${image}: ${describeError(err)}`, { cause: err });
  }
}

/** The PostgreSQL major an image declares (our label, the official image's PG_MAJOR, its tag). */
export function declaredMajor(image: string, info: Docker.ImageInspectInfo): number | undefined {
  const label = info.Config?.Labels?.["attest.postgres.major"];
  const env = info.Config?.Env?.find((e) => e.startsWith("PG_MAJOR="))?.slice("PG_MAJOR=".length);
  const tag = /:(\d+)(?:[.-][^/]*)?$/.exec(image)?.[1];
  for (const v of [label, env, tag]) {
    const n = Number(v);
    if (v && Number.isInteger(n) && n > 0) return n;
  }
  return undefined;
}

/** Pulls `image` from its registry, reporting progress; a failure names the image. */
export async function pullImage(
  docker: Docker,
  image: string,
  logger: Logger,
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<void> {
  const key = `pull ${image}`;
  const signal = AbortSignal.any([
    AbortSignal.timeout(opts.timeoutMs),
    ...(opts.signal ? [opts.signal] : []),
  ]);
  logger.info("pulling sandbox image", { image });
  try {
    const stream = await docker.pull(image, { abortSignal: signal });
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        (stream as NodeJS.ReadableStream & { destroy?: (e?: Error) => void }).destroy?.();
        reject(new Error(signal.reason instanceof Error ? signal.reason.message : "aborted"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      docker.modem.followProgress(
        stream,
        (err: Error | null) => {
          signal.removeEventListener("abort", onAbort);
          if (err) reject(err);
          else resolve();
        },
        (event: { status?: string; progress?: string; id?: string; error?: string }) => {
          if (event.error) return;
          logger.progress(key, [event.id, event.status, event.progress].filter(Boolean).join(" "));
        },
      );
    });
  } catch (err) {
    throw new VerifierError(`image ${image} not present and could not be pulled: ${describeError(err)}`, {
      cause: err,
    });
  } finally {
    logger.done(key);
  }
  if (!(await inspectImage(docker, image))) {
    throw new VerifierError(
      `image ${image} not present and could not be pulled: the pull ended without the image`,
    );
  }
  logger.info("pulled sandbox image", { image });
}
