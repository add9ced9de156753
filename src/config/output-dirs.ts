/**
 * The folders a run writes to (history, reports, outbox, plan state): a folder that cannot be
 * created or written is a configuration problem, said in one line before any run starts,
 * instead of a raw `ENOENT … mkdir` in the middle of one.
 */
import { accessSync, constants, statSync } from "node:fs";
import { dirname } from "node:path";
import type { Config } from "./schema.js";

/** One folder a run needs, and the key that names it. */
export interface OutputDir {
  key: string;
  dir: string;
}

/** The folders a run writes, by config key (defaults resolved). */
export function outputDirs(config: Pick<Config, "history" | "reports" | "mail" | "service">): OutputDir[] {
  const out: OutputDir[] = [
    { key: "history.csv", dir: dirname(config.history.csv) },
    { key: "reports.dir", dir: config.reports.dir },
  ];
  if (config.mail?.outbox) out.push({ key: "mail.outbox", dir: config.mail.outbox });
  if (config.service.state_dir) out.push({ key: "service.state_dir", dir: config.service.state_dir });
  return out;
}

/**
 * Why `dir` cannot be written (it, or the nearest existing folder above it that it would be
 * created in), or undefined when it can.
 */
export function whyNotWritable(dir: string): string | undefined {
  let at = dir;
  for (;;) {
    let isDir: boolean;
    try {
      isDir = statSync(at).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const up = dirname(at);
      if ((code === "ENOENT" || code === "ENOTDIR") && up !== at) {
        at = up;
        continue;
      }
      return `${at} cannot be read (${code ?? String(err)})`;
    }
    if (!isDir) return `${at} is not a folder`;
    try {
      accessSync(at, constants.W_OK | constants.X_OK);
      return undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      return at === dir
        ? `${dir} is not writable (${code})`
        : `${dir} cannot be created: ${at} is not writable (${code})`;
    }
  }
}

/** One line per output folder that cannot be written: `reports.dir: /x is not writable (EACCES)`. */
export function unwritableOutputs(
  config: Pick<Config, "history" | "reports" | "mail" | "service">,
): string[] {
  // the default history file lives in the reports folder: one line names both keys
  const keysByDir = new Map<string, string[]>();
  for (const { key, dir } of outputDirs(config)) keysByDir.set(dir, [...(keysByDir.get(dir) ?? []), key]);
  const out: string[] = [];
  for (const [dir, keys] of keysByDir) {
    const why = whyNotWritable(dir);
    if (why) out.push(`${keys.join(", ")}: ${why}`);
  }
  return out;
}
