/** Builds the configured runtime. The only place that knows every runtime. */
import type { Config } from "../config/schema.js";
import type { Logger } from "../util/log.js";
import { LocalRuntime } from "./local/local-runtime.js";
import type { Runtime } from "./runtime.js";

/** A runtime that can also destroy everything it has live (on a signal). */
export interface ManagedRuntime extends Runtime {
  destroyAll(): Promise<void>;
}

/** Bytes of a size such as 512m, 2g or 1.5GiB (the schema has checked the form). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)/i.exec(text);
  const unit = (m?.[2] ?? "").toLowerCase();
  const power = unit ? "kmgt".indexOf(unit) + 1 : 0;
  return Math.round(Number(m?.[1] ?? 0) * 1024 ** power);
}

/** Creates the runtime named by `sandbox.runtime`. */
export async function createRuntime(config: Config, logger: Logger): Promise<ManagedRuntime> {
  const s = config.sandbox;
  switch (s.runtime) {
    case "local":
      return new LocalRuntime({
        user: s.local.user,
        logger,
        confinement: s.confinement,
        maxProcesses: s.local.max_processes,
        ...(s.local.memory ? { memoryBytes: parseSize(s.local.memory) } : {}),
        ...(s.local.bin_dir ? { binDir: s.local.bin_dir } : {}),
        ...(s.local.work_dir ? { workDir: s.local.work_dir } : {}),
      });
    case "docker": {
      const { createDockerRuntime } = await import("./docker/docker-runtime.js");
      return createDockerRuntime(s.docker, logger);
    }
  }
}
