/** What every command shares: config loading, logger, printing, exit codes, signals. */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { ConfigError, loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import type { RunResult } from "../model.js";
import type { ManagedRuntime } from "../runtimes/registry.js";
import { LockBusyError } from "../scheduler/run-lock.js";
import { describeError, UsageError } from "../util/errors.js";
import { createLogger, type Logger } from "../util/log.js";
import { redact } from "../util/redact.js";

/** Exit codes shared by the commands. */
export { EXIT, exitCodeOf } from "../audit/run-status.js";

/** The environment variable that names the configuration when --config is not given. */
export const CONFIG_ENV = "ATTEST_CONFIG";
/** The system-wide configuration, last in the default chain. */
export const SYSTEM_CONFIG = "/etc/attest/attest.yml";
/**
 * For tests only: replaces SYSTEM_CONFIG, so the chain can be exercised without writing /etc.
 * Not a user setting (use --config or ATTEST_CONFIG).
 */
export const SYSTEM_CONFIG_TEST_ENV = "ATTEST_TEST_SYSTEM_CONFIG";

/** Where --config defaults to, in order: $ATTEST_CONFIG, ./attest.yml, /etc/attest/attest.yml. */
export function defaultConfigCandidates(
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): Array<{ label: string; path: string | undefined }> {
  return [
    { label: `$${CONFIG_ENV}`, path: env[CONFIG_ENV] || undefined },
    { label: "./attest.yml", path: resolve(cwd, "attest.yml") },
    { label: SYSTEM_CONFIG, path: env[SYSTEM_CONFIG_TEST_ENV] || SYSTEM_CONFIG },
  ];
}

/**
 * The configuration file a command reads: --config when given, else the first of the default
 * chain that exists. None: a usage error naming all three (exit 2).
 */
export function resolveConfigPath(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): string {
  if (file) return file;
  const candidates = defaultConfigCandidates(env, cwd);
  const found = candidates.find((c) => c.path !== undefined && existsSync(c.path));
  const skipped = candidates[0]!.path;
  // a variable that names a missing file is most likely a mistake: say which file is used instead
  if (found && skipped !== undefined && found.path !== skipped)
    process.stderr.write(
      `attest: $${CONFIG_ENV} names ${skipped}, which does not exist; using ${found.path}\n`,
    );
  if (found?.path) return found.path;
  const tried = candidates.map((c) =>
    c.path === undefined
      ? `${c.label} is not set`
      : `${c.label}${c.path === c.label ? "" : ` (${c.path})`} does not exist`,
  );
  throw new UsageError(`no configuration: --config not given; ${tried.join("; ")}`);
}

/** Loads the config named by --config or the default chain; a config error exits 2 with one line. */
export function configFrom(file: string | undefined): Config {
  return loadConfig(resolveConfigPath(file));
}

/** A logger for a command; JSON lines when --json or no TTY. */
export function loggerFor(opts: { json?: boolean; verbose?: boolean }): Logger {
  return createLogger({ json: Boolean(opts.json), level: opts.verbose ? "debug" : "info" });
}

/** Prints exactly one JSON document on standard output. */
export function printJson(doc: unknown): void {
  process.stdout.write(`${redact(JSON.stringify(doc, null, 2))}\n`);
}

/** What kind of error ended a command, for the `--json` error document. */
export const ERROR_CODES = ["config", "usage", "locked", "unverified"] as const;
/** One of ERROR_CODES. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** The error code of an error: usage and config errors exit 2, anything else 3. */
export function errorCodeOf(err: unknown): ErrorCode {
  if (err instanceof ConfigError) return "config";
  if (err instanceof UsageError) return "usage";
  if (err instanceof LockBusyError) return "locked";
  return "unverified";
}

/**
 * Prints an error as one line on standard error and returns the exit code; with `json`, also
 * prints the one JSON document of the invocation: `{"status":"error","error":{code,message}}`.
 */
export function fail(err: unknown, json = false): number {
  const code = errorCodeOf(err);
  const message = redact(describeError(err));
  process.stderr.write(`attest: ${message}\n`);
  if (json)
    process.stdout.write(`${JSON.stringify({ status: "error", error: { code, message } }, null, 2)}\n`);
  return code === "config" || code === "usage" ? 2 : 3;
}

/**
 * SIGINT/SIGTERM abort the run (sandboxes are destroyed on the way out); a second signal
 * destroys what is live at once and exits.
 */
export function installSignalHandlers(
  controller: AbortController,
  logger: Logger,
): { setRuntime(r: ManagedRuntime): void; dispose(): void } {
  let runtime: ManagedRuntime | undefined;
  let count = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    count++;
    if (count === 1) {
      logger.warn(`received ${sig}: stopping, destroying sandboxes`);
      controller.abort(new Error(`received ${sig}`));
      return;
    }
    logger.warn(`received ${sig} again: destroying sandboxes now and exiting`);
    void (runtime?.destroyAll() ?? Promise.resolve()).finally(() =>
      process.exit(sig === "SIGINT" ? 130 : 143),
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    setRuntime: (r) => {
      runtime = r;
    },
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/** A short human summary of a run, for standard error when not --json. */
export function printSummary(run: RunResult): void {
  const lines = [`${run.run.kind} ${run.run.id}: ${run.status.toUpperCase()}`];
  for (const d of run.drills) {
    lines.push(
      `  ${d.verdict.toUpperCase().padEnd(5)} ${d.source}/${d.series} ${d.backup.id} (${d.backup.format}) ${Math.round(d.timings.totalMs / 100) / 10}s — ${d.reason}`,
    );
  }
  for (const v of run.violations)
    lines.push(
      `  ${v.severity.toUpperCase()} ${v.rule} ${v.source}${v.series ? `/${v.series}` : ""}: ${v.message}`,
    );
  for (const d of run.delivery ?? []) if (!d.ok) lines.push(`  delivery ${d.channel} failed: ${d.detail}`);
  process.stdout.write(`${redact(lines.join("\n"))}\n`);
}
