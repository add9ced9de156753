/** Runs the real `attest` CLI as a child process, as a user would. */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
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

/** Sandbox directories of the local runtime that belong to `runId` (or any, without it). */
export function localSandboxes(runId?: string): string[] {
  const base = join(tmpdir(), "attest-sandboxes");
  if (!existsSync(base)) return [];
  return readdirSync(base).filter((n) => n.startsWith("attest-") && (!runId || n.includes(runId)));
}

/** Local sandbox directories whose owner.json names process `pid`. */
export function localSandboxesOf(pid: number): string[] {
  const base = join(tmpdir(), "attest-sandboxes");
  return localSandboxes().filter((name) => {
    try {
      return (
        (JSON.parse(readFileSync(join(base, name, "owner.json"), "utf8")) as { pid: number }).pid === pid
      );
    } catch {
      return false;
    }
  });
}
