/** Runs the barman CLI as the configured Barman user, with `-c CONF`, and reads its JSON output. */

import { VerifierError } from "../../util/errors.js";
import { isRoot, lookupUser } from "../../util/os-user.js";
import { lastLines, type RunResult, runProcess } from "../../util/process.js";

/** How to reach one Barman installation. */
export interface BarmanCliOptions {
  configFile: string;
  /** OS user to run as when this process is root. */
  user: string;
}

/** What one barman invocation may take. */
export interface BarmanRunOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  allowFailure?: boolean;
  onStderrLine?: (line: string) => void;
}

/** Runs `barman -c CONF ARGS` (as the Barman user when root); throws with the stderr tail. */
export async function runBarman(
  cli: BarmanCliOptions,
  args: readonly string[],
  opts: BarmanRunOptions = {},
): Promise<RunResult> {
  let ids: { uid: number; gid: number } | undefined;
  let home: string | undefined;
  if (isRoot()) {
    const u = lookupUser(cli.user);
    // Barman drops to its barman_user itself; as that user its lock files stay its own
    if (!u) throw new VerifierError(`barman_user "${cli.user}" does not exist on this host`);
    ids = { uid: u.uid, gid: u.gid };
    home = u.home;
  }
  return runProcess("barman", ["-c", cli.configFile, ...args], {
    timeoutMs: opts.timeoutMs ?? 120_000,
    env: {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      LANG: "C.UTF-8",
      ...(home ? { HOME: home } : process.env.HOME ? { HOME: process.env.HOME } : {}),
    },
    // a cwd the Barman user can enter
    cwd: "/",
    ...(ids ? ids : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.allowFailure ? { allowFailure: true } : {}),
    ...(opts.onStderrLine ? { onStderrLine: opts.onStderrLine } : {}),
  });
}

/** Runs `barman -c CONF -f json ARGS` and parses the document it prints. */
export async function barmanJson<T>(
  cli: BarmanCliOptions,
  args: readonly string[],
  opts: BarmanRunOptions = {},
): Promise<T> {
  const r = await runBarman(cli, ["-f", "json", ...args], opts);
  try {
    return JSON.parse(r.stdout) as T;
  } catch (err) {
    throw new VerifierError(
      `barman ${args.join(" ")} printed no JSON (Barman 3.x needed): ${lastLines(r.stdout || r.stderrTail, 3)}`,
      { cause: err },
    );
  }
}
