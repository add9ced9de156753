/** Running a program inside a container (docker exec), with the contract of runProcess. */
import type { Duplex } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import type Docker from "dockerode";
import { coerceError } from "../../util/errors.js";
import { LineTail, ProcessError, type RunResult, settle } from "../../util/process.js";
import { abortReason, retryUntil } from "../../util/retry.js";
import type { SandboxExecOptions } from "../runtime.js";

/** What to run in the container. */
export interface ExecCommand {
  /** The program's name, for messages. */
  name: string;
  cmd: string[];
  user: string;
  env: string[];
  workingDir: string;
}

/** What the sandbox does for a running command. */
export interface ExecControl {
  /** Signals the command's process group (timeouts, aborts). */
  kill(signal: "TERM" | "KILL"): Promise<void>;
  /** Explains a failure by the sandbox's state (container killed, OOM kill), or undefined. */
  explain(result: RunResult): Promise<Error | undefined>;
  /**
   * Ends every program of the sandbox (kills its container): the last resort when the command
   * outlived its KILL, because the signal went astray (the pid file the sandbox's own user can
   * rewrite named another process) and nothing else would ever end it.
   */
  stop(): Promise<void>;
}

/** Options of runExec: the sandbox's, plus a stdout cap. */
export type ExecOptions = SandboxExecOptions & { maxStdoutBytes?: number };

const KILL_GRACE_MS = 3000;
/** How long a command may outlive its KILL before the whole sandbox is ended. */
const STOP_GRACE_MS = 10_000;

/**
 * Runs `command` through the engine's exec API: stdin streamed over the hijacked connection
 * (half-closed at its end), stdout/stderr demultiplexed, the exit code from exec inspect.
 * Throws ProcessError on a non-zero exit unless allowed, and the sandbox's own explanation
 * (a VerifierError) when the container died or the kernel killed the program.
 */
export async function runExec(
  docker: Docker,
  container: Docker.Container,
  command: ExecCommand,
  opts: ExecOptions,
  control: ExecControl,
): Promise<RunResult> {
  // A caller's stream may already flow (a byte counter listens to it); hold it until it is
  // piped, or what it emits while the exec is being created would be lost. Nothing may
  // await before this line.
  if (opts.stdin !== undefined && typeof opts.stdin !== "string" && !Buffer.isBuffer(opts.stdin)) {
    opts.stdin.pause();
  }
  if (opts.signal?.aborted) throw abortReason(opts.signal);
  const withStdin = opts.stdin !== undefined;
  let exec: Docker.Exec;
  let stream: Duplex;
  try {
    exec = await container.exec({
      Cmd: command.cmd,
      AttachStdin: withStdin,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      User: command.user,
      Env: command.env,
      WorkingDir: command.workingDir,
    });
    stream = (await exec.start({ hijack: true, stdin: withStdin })) as Duplex;
  } catch (err) {
    // most often the container is gone or stopped: say that rather than the engine's HTTP error
    const none: RunResult = { code: null, signal: null, stdout: "", stderrTail: "", timedOut: false };
    throw (
      (await control.explain(none)) ??
      new ProcessError(`${command.name}: could not start: ${coerceError(err).message}`, undefined, {
        cause: err,
      })
    );
  }

  const stderr = new LineTail(opts.onStderrLine);
  const stdoutLines = opts.onStdoutLine ? new LineTail(opts.onStdoutLine) : undefined;
  let longLine = false;
  // a line past the cap ends the program: a backup's output is hostile (see LineTail)
  const checkLines = () => {
    if (!longLine && (stderr.tooLong || stdoutLines?.tooLong)) {
      longLine = true;
      kill();
    }
  };
  const outText = new StringDecoder("utf8");
  const errText = new StringDecoder("utf8");
  const chunks: Buffer[] = [];
  let stdoutBytes = 0;
  let timedOut = false;
  let overflow = false;
  let aborted: Error | undefined;
  let finished = false;
  let streamEnded = false;
  let killTimer: NodeJS.Timeout | undefined;

  const kill = () => {
    if (killTimer || finished) return;
    void control.kill("TERM").catch(() => {});
    killTimer = setTimeout(() => {
      if (finished) return;
      void control.kill("KILL").catch(() => {});
      killTimer = setTimeout(() => {
        // a stream that ended is a program that ended, while its exit code is still awaited
        if (!finished && !streamEnded) void control.stop().catch(() => {});
      }, STOP_GRACE_MS);
      killTimer.unref();
    }, KILL_GRACE_MS);
    killTimer.unref();
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, opts.timeoutMs);
  const onAbort = () => {
    aborted ??= abortReason(opts.signal!);
    kill();
  };
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  // an abort while the exec was being created fired before this listener: it is not lost
  if (opts.signal?.aborted) onAbort();

  const stdoutSink = {
    write(b: Buffer): boolean {
      if (stdoutLines) {
        stdoutLines.push(outText.write(b));
        checkLines();
        return true;
      }
      stdoutBytes += b.length;
      if (stdoutBytes > (opts.maxStdoutBytes ?? 64 * 1024 * 1024)) {
        if (!overflow) kill();
        overflow = true;
        return true;
      }
      chunks.push(b);
      return true;
    },
  };
  const stderrSink = {
    write(b: Buffer): boolean {
      stderr.push(errText.write(b));
      checkLines();
      return true;
    },
  };
  docker.modem.demuxStream(
    stream,
    stdoutSink as unknown as NodeJS.WritableStream,
    stderrSink as unknown as NodeJS.WritableStream,
  );

  const ended = new Promise<void>((resolve) => {
    const done = () => {
      streamEnded = true;
      resolve();
    };
    stream.once("end", done);
    stream.once("close", done);
    stream.once("error", done);
  });
  if (opts.stdin !== undefined) {
    if (typeof opts.stdin === "string" || Buffer.isBuffer(opts.stdin)) stream.end(opts.stdin);
    else {
      const input = opts.stdin;
      input.on("error", (err) => {
        aborted ??= coerceError(err);
        kill();
      });
      // pipe() ends the stream when the input ends: a half-close the engine turns into EOF on stdin
      input.pipe(stream);
    }
  }

  try {
    await ended;
    // the stream can end a moment before the engine records the exit code
    // (an exec the engine no longer knows, its container removed, has no exit code: null at once)
    const info = await retryUntil(
      async () => {
        const i = await exec.inspect().catch(() => null);
        return i?.Running ? undefined : i;
      },
      { timeoutMs: 5000, intervalMs: 10, maxIntervalMs: 50, what: `${command.name} to finish` },
    ).catch(() => null);
    finished = true;
    stdoutLines?.push(outText.end());
    stderr.push(errText.end());
    stderr.end();
    stdoutLines?.end();
    const code = info ? info.ExitCode : null;
    const result: RunResult = {
      code,
      signal: null,
      stdout: Buffer.concat(chunks).toString("utf8"),
      stderrTail: stderr.text,
      timedOut,
    };
    // an exit the sandbox can explain (killed by the OOM killer, the container gone) says so first
    if (!aborted && !(timedOut && !opts.allowFailure) && !overflow && !longLine && code !== 0) {
      const explained = await control.explain(result);
      if (explained) throw explained;
    }
    const failure = settle(command.name, result, { aborted, overflow, longLine }, opts);
    if (failure) throw failure;
    return result;
  } finally {
    finished = true;
    clearTimeout(timer);
    if (killTimer) clearTimeout(killTimer);
    opts.signal?.removeEventListener("abort", onAbort);
    if (opts.stdin !== undefined && typeof opts.stdin !== "string" && !Buffer.isBuffer(opts.stdin)) {
      opts.stdin.unpipe(stream);
    }
    stream.destroy();
  }
}
