/**
 * `barman recover` run confined: bubblewrap with no network, nothing of the host but /usr,
 * Barman's configuration (read-only), Barman's home (its catalog, locks and log: writable, as
 * Barman itself needs) and the staging directories it recovers into. Barman copies what a backup
 * holds (links included) and then writes into the copy (WAL, recovery settings): confined, a link
 * planted in the backup leads nowhere on the host.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute } from "node:path";
import { assertConfinable, confinedArgv, etcDirFor } from "../../runtimes/local/confine.js";
import { VerifierError } from "../../util/errors.js";
import { isRoot, type OsUser } from "../../util/os-user.js";
import { type RunResult, runProcess } from "../../util/process.js";

/** The paths of Barman's global configuration a confined `barman` needs to see. */
export interface BarmanPaths {
  /** Read-only: the configuration file and its configuration_files_directory. */
  readOnly: string[];
  /** Writable: barman_home, the lock directory, the log file's directory. */
  writable: string[];
}

/** Reads the [barman] section of a barman.conf (INI) for the directories Barman uses. */
export function barmanPaths(configFile: string, text: string): BarmanPaths {
  const global: Record<string, string> = {};
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith(";") || line.startsWith("#")) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1]!.trim();
      continue;
    }
    const kv = /^([A-Za-z_][A-Za-z0-9_]*)\s*[=:]\s*(.*)$/.exec(line);
    if (kv && section === "barman") global[kv[1]!.toLowerCase()] = kv[2]!.trim();
  }
  const home = global.barman_home;
  if (!home || !isAbsolute(home))
    throw new VerifierError(
      `${configFile}: no absolute barman_home in [barman]; cannot confine barman recover`,
    );
  const writable = new Set([home]);
  if (global.barman_lock_directory && isAbsolute(global.barman_lock_directory))
    writable.add(global.barman_lock_directory);
  if (global.log_file && isAbsolute(global.log_file)) writable.add(dirname(global.log_file));
  const readOnly = [configFile];
  const confDir = global.configuration_files_directory;
  if (confDir && isAbsolute(confDir) && existsSync(confDir)) readOnly.push(confDir);
  return { readOnly, writable: [...writable].filter((p) => existsSync(p)) };
}

function findBarman(): string {
  for (const p of ["/usr/bin/barman", "/usr/local/bin/barman"]) if (existsSync(p)) return p;
  throw new VerifierError("barman is not installed (looked in /usr/bin and /usr/local/bin)");
}

/** Runs `barman -c CONF ARGS` confined, as `user` (Barman's own account) when Attest is root. */
export async function runBarmanConfined(
  cli: { configFile: string },
  user: OsUser | undefined,
  args: readonly string[],
  opts: { writable: readonly string[]; timeoutMs: number; signal?: AbortSignal },
): Promise<RunResult> {
  const paths = barmanPaths(cli.configFile, readFileSync(cli.configFile, "utf8"));
  // Barman looks its account up by name: a synthetic /etc that names it, and nothing else
  const etcDir = etcDirFor(user);
  await assertConfinable(user, etcDir);
  const home = paths.writable[0] ?? "/";
  const { cmd, args: a } = confinedArgv(findBarman(), ["-c", cli.configFile, ...args], {
    mode: "bwrap",
    readOnly: paths.readOnly,
    writable: [...paths.writable, ...opts.writable],
    user,
    env: {
      PATH: "/usr/local/bin:/usr/bin:/bin",
      LANG: "C.UTF-8",
      HOME: home,
      ...(user ? { USER: user.name, LOGNAME: user.name } : {}),
    },
    cwd: "/",
    etcDir,
  });
  return await runProcess(cmd, a, {
    timeoutMs: opts.timeoutMs,
    allowFailure: true,
    env: { PATH: "/usr/bin:/bin" },
    ...(user && isRoot() ? { uid: user.uid, gid: user.gid } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}
