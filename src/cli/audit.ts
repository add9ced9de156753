/** `attest audit` and `attest drill`. */
import { runAudit } from "../audit/run-audit.js";
import { makeRunId } from "../audit/run-status.js";
import { unwritableOutputs } from "../config/output-dirs.js";
import { lockLeaseOf, runLockPath, withRunLock } from "../scheduler/run-lock.js";
import { parseDuration } from "../util/duration.js";
import { UsageError } from "../util/errors.js";
import {
  configFrom,
  exitCodeOf,
  fail,
  installSignalHandlers,
  loggerFor,
  printJson,
  printSummary,
} from "./common.js";

/** The flags of `audit` and `drill`. */
export interface RunFlags {
  config?: string;
  source?: string[];
  json?: boolean;
  mail?: boolean;
  backup?: string;
  targetTime?: string;
  label?: string;
  verbose?: boolean;
  wait?: string;
}

/** Runs `audit` or `drill`; returns the exit code. */
export async function auditCommand(kind: "audit" | "drill", flags: RunFlags): Promise<number> {
  const logger = loggerFor(flags);
  const controller = new AbortController();
  const signals = installSignalHandlers(controller, logger);
  try {
    const config = configFrom(flags.config);
    if (kind === "drill" && (flags.source?.length ?? 0) !== 1)
      throw new UsageError("drill needs exactly one --source NAME");
    if (flags.targetTime && Number.isNaN(Date.parse(flags.targetTime)))
      throw new UsageError(`--target-time ${flags.targetTime} is not an ISO time`);
    const waitMs = flags.wait === undefined || flags.wait === "0" ? 0 : parseDuration(flags.wait);
    if (waitMs === undefined) throw new UsageError(`--wait ${flags.wait} is not a duration (e.g. 90s, 10m)`);
    // a folder the run cannot write would fail it at its first write, after the drills
    const unwritable = unwritableOutputs(config);
    if (unwritable.length) throw new UsageError(`${config.file}: ${unwritable.join("; ")}`);
    const runId = makeRunId();
    // one run at a time per history file: a second run waits up to --wait or exits 3
    const lockOpts = {
      waitMs,
      signal: controller.signal,
      logger,
      ...lockLeaseOf(config),
      // another run owns the history now: stop rather than interleave appends with it
      onLost: (err: Error) => controller.abort(err),
    };
    const result = await withRunLock(runLockPath(config), { runId, kind }, lockOpts, () =>
      runAudit({
        config,
        kind,
        runId,
        sources: flags.source ?? [],
        ...(flags.backup ? { backup: flags.backup } : {}),
        ...(flags.targetTime ? { targetTime: flags.targetTime } : {}),
        ...(flags.label ? { label: flags.label } : {}),
        mail: flags.mail !== false,
        logger,
        signal: controller.signal,
        onRuntime: (r) => signals.setRuntime(r),
      }),
    );
    if (flags.json) printJson(result);
    else printSummary(result);
    return exitCodeOf(result.status);
  } catch (err) {
    return fail(err, flags.json);
  } finally {
    signals.dispose();
  }
}
