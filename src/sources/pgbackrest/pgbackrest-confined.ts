/**
 * pgBackRest run by the source (info, verify, repo-ls) confined like every reader of a backup:
 * no network, nothing of the host but /usr, the pgbackrest.conf and the repository (a posix
 * path, read-only). An S3 repository is reached through the store relay: network to the
 * store's endpoint and to nothing else.
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  assertConfinable,
  confinedArgv,
  etcFiles,
  readerOf,
  runConfined,
} from "../../runtimes/local/confine.js";
import { forwardArgs, startStoreRelay, writeStoreNames } from "../../runtimes/local/store-relay.js";
import { isRoot } from "../../util/os-user.js";
import { type RunResult, runProcess } from "../../util/process.js";
import { type PgbackrestRepo, QUIET_ARGS, repoArgs, repoPathOf, repoStoreOf } from "./pgbackrest-args.js";

/** The system's trusted CAs, for a store whose certificate a public CA signed (public data). */
const SYSTEM_CERTS = "/etc/ssl/certs";

/** pgBackRest's own settings from the environment (PGBACKREST_*), and nothing else of Attest's. */
export function pgbackrestSettingsEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (k.startsWith("PGBACKREST_") && v !== undefined) env[k] = v;
  return env;
}

/** Runs `pgbackrest <repo options> <quiet> ARGS` confined; a non-zero exit throws (ProcessError). */
export async function runPgbackrestConfined(
  repo: PgbackrestRepo,
  args: readonly string[],
  opts: { timeoutMs: number; signal?: AbortSignal | undefined },
): Promise<RunResult> {
  const store = repoStoreOf(repo);
  const posixPath = repoPathOf(repo);
  const readOnly = [repo.config_file, posixPath, ...(store?.trustFiles ?? [])].filter(
    (p): p is string => Boolean(p) && existsSync(p as string),
  );
  if (store && existsSync(SYSTEM_CERTS)) readOnly.push(SYSTEM_CERTS);
  // the account that owns the configuration (as root; the repository's own otherwise)
  const user = isRoot() && readOnly[0] ? readerOf(readOnly[0]) : undefined;
  // its default lock path is in /tmp, a private one inside
  const full = [...repoArgs(repo), ...QUIET_ARGS, ...args];
  const run = {
    user,
    env: pgbackrestSettingsEnv(),
    timeoutMs: opts.timeoutMs,
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
  if (!store) return runConfined("pgbackrest", full, { ...run, readOnly });
  // the relay's socket and a synthetic /etc that names the store's host (the sandbox has no resolver)
  const dir = mkdtempSync(join(tmpdir(), "attest-store-"));
  try {
    chmodSync(dir, 0o711);
    const files = etcFiles(user);
    writeFileSync(join(dir, "passwd"), files.passwd, { mode: 0o644 });
    writeFileSync(join(dir, "group"), files.group, { mode: 0o644 });
    writeStoreNames(dir, store.endpoint, store.names);
    await assertConfinable(user, dir);
    await using relay = await startStoreRelay({ endpoint: store.endpoint, dir, owner: user });
    const { cmd, args: a } = confinedArgv("sh", forwardArgs(relay, "pgbackrest", full), {
      mode: "bwrap",
      readOnly: [...readOnly, dir],
      writable: [],
      user,
      env: { PATH: "/usr/local/bin:/usr/bin:/bin", LANG: "C.UTF-8", ...run.env },
      cwd: "/",
      etcDir: dir,
      // a reader's limits (confine.ts): pgbackrest with its few workers needs no more
      maxProcesses: 64,
      maxProcessBytes: 2 * 1024 ** 3,
    });
    return await runProcess(cmd, a, {
      timeoutMs: opts.timeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
      env: { PATH: "/usr/bin:/bin" },
      ...(user && isRoot() ? { uid: user.uid, gid: user.gid } : {}),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
