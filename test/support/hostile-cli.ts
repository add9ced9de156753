/** Runs the real CLI under a hard bound: past it the whole process group is killed. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./cli.js";

/** What a bounded CLI run left. */
export interface BoundedResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The bound expired and the CLI was killed: the drill did not end by itself. */
  overran: boolean;
  elapsedMs: number;
  /** Pid of the CLI process (sandbox directories record their owner's pid). */
  pid: number;
}

/** Runs `attest ARGS` with `env` added; kills its process group after `boundMs`. */
export function attestBounded(
  args: string[],
  env: Record<string, string>,
  boundMs: number,
): Promise<BoundedResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [join(ROOT, "dist", "cli", "main.js"), ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      // its own process group, so that an overrun can be ended with everything it started
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    let overran = false;
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    const timer = setTimeout(() => {
      overran = true;
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }, boundMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, overran, elapsedMs: performance.now() - started, pid: child.pid ?? 0 });
    });
  });
}
