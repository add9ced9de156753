/** Runs the real `attest` CLI as a child process, as a user would. */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The repository root. */
export const ROOT = join(import.meta.dirname, "..", "..");
/** The sample dumps built by fixtures/build-dumps.sh. */
export const DUMPS = join(ROOT, "fixtures", "generated", "dumps");

/** What a CLI run left. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `attest ARGS`; resolves when it exits. */
export function attest(
  args: string[],
  opts: {
    env?: NodeJS.ProcessEnv;
    onSpawn?: (pid: number) => void;
    /** Called with all of standard error so far each time more arrives (to act on a log line). */
    onStderr?: (soFar: string) => void;
  } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "dist", "cli", "main.js"), ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (child.pid) opts.onSpawn?.(child.pid);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
      opts.onStderr?.(stderr);
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A temporary working folder with a config file written from YAML text. Without a `policies:`
 * block of its own the config sets no policy target (`policies: {}`), unless `defaultPolicies`:
 * the documented defaults (rpo 26h, retention 7…) would make a drill test's status depend on
 * how many fixture dumps there are and on the day they were built.
 */
export function workspace(
  yaml: (dir: string) => string,
  opts: { defaultPolicies?: boolean } = {},
): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), "attest-test-"));
  const config = join(dir, "attest.yml");
  const text = yaml(dir);
  const own = opts.defaultPolicies || /^policies\s*:/m.test(text);
  writeFileSync(config, own ? text : `${text}${text.endsWith("\n") ? "" : "\n"}policies: {}\n`);
  return { dir, config };
}

/**
 * A temporary folder to hand a CLI run as its TMPDIR: its sandboxes then lie where no other test
 * file's run sweeps them (every run sweeps the sandboxes of dead owners in its TMPDIR), so a test
 * can tell which run removed a leftover. Searchable by the sandbox account, as the run's own is.
 */
export function privateTmp(): string {
  // a short name: a sandbox's socket path under it must stay within the 107 bytes of a Unix socket
  const dir = mkdtempSync(join(tmpdir(), "t"));
  chmodSync(dir, 0o711);
  return dir;
}

/** Sandbox directories of the local runtime that belong to `runId` (or any, without it). */
export function localSandboxes(runId?: string, tmp = tmpdir()): string[] {
  const base = join(tmp, "attest-sandboxes");
  if (!existsSync(base)) return [];
  return readdirSync(base).filter((n) => n.startsWith("attest-") && (!runId || n.includes(runId)));
}

/** Local sandbox directories whose owner.json names process `pid`. */
export function localSandboxesOf(pid: number, tmp = tmpdir()): string[] {
  const base = join(tmp, "attest-sandboxes");
  return localSandboxes(undefined, tmp).filter((name) => {
    try {
      return (
        (JSON.parse(readFileSync(join(base, name, "owner.json"), "utf8")) as { pid: number }).pid === pid
      );
    } catch {
      return false;
    }
  });
}
