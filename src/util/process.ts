/** Running external programs: timeouts, abort, stderr tail in every error. */
import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { abortReason } from "./retry.js";

/** How to run a program. */
export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Data for standard input: a string/Buffer, or a stream piped in. */
  stdin?: string | Buffer | Readable;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Called with each complete line of standard error. */
  onStderrLine?: (line: string) => void;
  /** Called with each complete line of standard output (then stdout is not kept). */
  onStdoutLine?: (line: string) => void;
  /** Largest standard output kept in memory (bytes); more is an error. */
  maxStdoutBytes?: number;
  /** Do not throw on a non-zero exit or a timeout: the result says `code` and `timedOut`. */
  allowFailure?: boolean;
}

/** What a finished program left. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderrTail: string;
  timedOut: boolean;
}

/** A program that exited non-zero, timed out, or could not start. */
export class ProcessError extends Error {
  override readonly name = "ProcessError";
  constructor(
    message: string,
    readonly result: RunResult | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const TAIL_LINES = 12;

/** Longest line of a program's output Attest keeps (characters): a backup can print anything. */
export const MAX_LINE_CHARS = 64 * 1024 * 1024;

/** What a program gets when no environment is given: a search path and a locale, no secrets. */
export const MINIMAL_ENV: Readonly<Record<string, string>> = Object.freeze({
  PATH: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: "C.UTF-8",
});

/** Keeps the last lines of a stream, for error messages; calls `onLine` for each complete line. */
export class LineTail {
  readonly #lines: string[] = [];
  #parts: string[] = [];
  #partLength = 0;
  #skipping = false;
  /** Set once a line grew past `maxLine`: the runner ends the program (a backup's output is hostile). */
  tooLong = false;
  constructor(
    readonly onLine?: (line: string) => void,
    readonly maxLine = MAX_LINE_CHARS,
  ) {}
  /** Linear in the output: a long line is gathered in pieces, never re-split. */
  push(chunk: string): void {
    let start = 0;
    for (let nl = chunk.indexOf("\n"); nl >= 0; nl = chunk.indexOf("\n", start)) {
      const piece = chunk.slice(start, nl);
      if (!this.#skipping) this.#add(this.#parts.length ? this.#parts.join("") + piece : piece);
      this.#parts = [];
      this.#partLength = 0;
      this.#skipping = false;
      start = nl + 1;
    }
    if (start >= chunk.length || this.#skipping) return;
    const rest = chunk.slice(start);
    this.#partLength += rest.length;
    if (this.#partLength > this.maxLine) {
      this.tooLong = true;
      this.#skipping = true;
      this.#parts = [];
      this.#partLength = 0;
      return;
    }
    this.#parts.push(rest);
  }
  end(): void {
    if (this.#parts.length && !this.#skipping) this.#add(this.#parts.join(""));
    this.#parts = [];
    this.#partLength = 0;
  }
  #add(line: string): void {
    this.onLine?.(line);
    this.#lines.push(line);
    if (this.#lines.length > TAIL_LINES) this.#lines.shift();
  }
  get text(): string {
    return this.#lines.join("\n").trim();
  }
}

/** Runs `cmd args`, resolving when it exits; throws ProcessError on failure unless allowed. */
export function runProcess(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(abortReason(opts.signal));
    const child = spawn(cmd, args, {
      // a program gets the environment it is given, never Attest's (SMTP password, webhook URL, …)
      env: opts.env ?? MINIMAL_ENV,
      cwd: opts.cwd,
      uid: opts.uid,
      gid: opts.gid,
      // own process group, so a timeout or abort also ends the program's children (pg_restore -j)
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const stderr = new LineTail(opts.onStderrLine);
    const stdoutLines = opts.onStdoutLine ? new LineTail(opts.onStdoutLine) : undefined;
    const chunks: Buffer[] = [];
    let stdoutBytes = 0;
    let timedOut = false;
    let aborted: Error | undefined;
    let overflow = false;
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGTERM");
      } catch {}
      setTimeout(() => {
        try {
          if (child.pid && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
        } catch {}
      }, 3000).unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs);
    const onAbort = () => {
      aborted = abortReason(opts.signal!);
      kill();
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });

    let longLine = false;
    const checkLines = () => {
      if (!longLine && (stderr.tooLong || stdoutLines?.tooLong)) {
        longLine = true;
        kill();
      }
    };
    child.stdout.on("data", (b: Buffer) => {
      if (stdoutLines) {
        stdoutLines.push(b.toString("utf8"));
        return checkLines();
      }
      stdoutBytes += b.length;
      if (stdoutBytes > (opts.maxStdoutBytes ?? 64 * 1024 * 1024)) {
        overflow = true;
        kill();
        return;
      }
      chunks.push(b);
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr.push(b.toString("utf8"));
      checkLines();
    });
    child.stdin.on("error", () => {
      // the program may exit before reading all input (it failed); its exit code says why
    });
    if (opts.stdin === undefined) child.stdin.end();
    else if (typeof opts.stdin === "string" || Buffer.isBuffer(opts.stdin)) child.stdin.end(opts.stdin);
    else {
      opts.stdin.on("error", (err) => {
        aborted ??= err;
        kill();
      });
      opts.stdin.pipe(child.stdin);
    }

    child.on("error", (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      reject(new ProcessError(`${cmd}: could not start: ${err.message}`, undefined, { cause: err }));
    });
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      stderr.end();
      stdoutLines?.end();
      const result: RunResult = {
        code,
        signal: sig,
        stdout: Buffer.concat(chunks).toString("utf8"),
        stderrTail: stderr.text,
        timedOut,
      };
      const failure = settle(cmd.split("/").pop() ?? cmd, result, { aborted, overflow, longLine }, opts);
      if (failure) return reject(failure);
      resolve(result);
    });
  });
}

/**
 * What a finished program's result means, for host processes and for programs run in a container
 * alike (one rule, so no runner can forget a case): the error to throw, or undefined when the
 * result stands. An abort always throws; with `allowFailure` a timeout or a non-zero exit is a
 * result the caller decides about.
 */
export function settle(
  name: string,
  result: RunResult,
  how: { aborted?: Error | undefined; overflow?: boolean; longLine?: boolean },
  opts: { timeoutMs: number; allowFailure?: boolean | undefined },
): ProcessError | undefined {
  const tail = result.stderrTail ? `: ${lastLines(result.stderrTail, 3)}` : "";
  if (how.aborted)
    return new ProcessError(`${name} stopped: ${how.aborted.message}`, result, { cause: how.aborted });
  if (result.timedOut && !opts.allowFailure)
    return new ProcessError(`${name} timed out after ${opts.timeoutMs} ms${tail}`, result);
  if (how.overflow) return new ProcessError(`${name} printed more output than allowed`, result);
  if (how.longLine)
    return new ProcessError(`${name} printed a line longer than ${MAX_LINE_CHARS / 1048576} MiB`, result);
  if ((result.code !== 0 || result.signal) && !opts.allowFailure) {
    const why = result.signal
      ? `was killed by ${result.signal}`
      : result.code === null
        ? "ended without an exit code"
        : `exited with code ${result.code}`;
    return new ProcessError(`${name} ${why}${tail}`, result);
  }
  return undefined;
}

/** The last `n` non-empty lines of a text, joined with " | ". */
export function lastLines(text: string, n: number): string {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-n)
    .join(" | ");
}
