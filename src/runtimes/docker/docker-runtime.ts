/** The `docker` runtime (being built): containers per drill. */
import type { Logger } from "../../util/log.js";
import { VerifierError } from "../../util/errors.js";
import type { ManagedRuntime } from "../registry.js";

/** Creates the docker runtime. */
export async function createDockerRuntime(config: unknown, logger: Logger): Promise<ManagedRuntime> {
  void config;
  void logger;
  throw new VerifierError("runtime docker is not available in this build; use runtime: local");
}
