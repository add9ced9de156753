/** `attest serve`: the schedule, /healthz, /metrics and /runs until SIGTERM. */
import { unwritableOutputs } from "../config/output-dirs.js";
import { startService } from "../service/service.js";
import { UsageError } from "../util/errors.js";
import { configFrom, fail, loggerFor } from "./common.js";

/** The flags of `serve`. */
export interface ServeFlags {
  config?: string;
  verbose?: boolean;
}

/** Runs `serve` until the service stops; returns the exit code. */
export async function serve(flags: ServeFlags): Promise<number> {
  const logger = loggerFor(flags);
  let service: Awaited<ReturnType<typeof startService>>;
  try {
    const config = configFrom(flags.config);
    // every scheduled run would fail at its first write: refuse to start, naming the folder
    const unwritable = unwritableOutputs(config);
    if (unwritable.length) throw new UsageError(`${config.file}: ${unwritable.join("; ")}`);
    service = await startService(config, logger);
  } catch (err) {
    return fail(err);
  }
  let signals = 0;
  const onStop = (sig: NodeJS.Signals) => {
    if (signals++ === 0) void service.shutdown(`received ${sig}`);
    else void service.forceStop(`received ${sig} again`);
  };
  const onReload = () => {
    logger.info("received SIGHUP: reloading the configuration");
    service.reload();
  };
  process.on("SIGTERM", onStop);
  process.on("SIGINT", onStop);
  process.on("SIGHUP", onReload);
  const code = await service.stopped;
  process.off("SIGTERM", onStop);
  process.off("SIGINT", onStop);
  process.off("SIGHUP", onReload);
  // whatever an aborted run still holds must not keep a stopped service alive
  setTimeout(() => process.exit(code), code === 0 ? 5_000 : 0).unref();
  return code;
}
