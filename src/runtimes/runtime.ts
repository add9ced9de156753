/** The Runtime stage: throwaway PostgreSQL sandboxes. */
import type { Readable } from "node:stream";
import type { RunResult } from "../util/process.js";

/** A host path the sandbox needs to read (a backup). */
export interface SandboxInput {
  /** Host path of a file or directory. */
  hostPath: string;
}

/** What to provision. */
export interface SandboxSpec {
  /** PostgreSQL major the sandbox must run. */
  pgMajor: number;
  /** Allow a newer major than `pgMajor` (logical restores); physical ones need the same. */
  allowNewer: boolean;
  /** Run id, source and backup: carried as labels so a later run can sweep leftovers. */
  labels: { run: string; source: string; backup: string };
  /** `init`: a fresh cluster, started. `empty`: an empty data directory, not started. */
  mode: "init" | "empty";
  /** Host paths the sandbox reads (read-only). */
  inputs: SandboxInput[];
  /** Host data directory to run on (volume runtimes); implies mode `empty`. */
  dataDir?: string;
}

/** A connection to a sandbox's server, for node-postgres and for tools. */
export interface SandboxConnection {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** How to run a program inside a sandbox. */
export interface SandboxExecOptions {
  stdin?: string | Buffer | Readable;
  timeoutMs: number;
  signal?: AbortSignal;
  env?: Record<string, string>;
  onStderrLine?: (line: string) => void;
  onStdoutLine?: (line: string) => void;
  allowFailure?: boolean;
}

/** Server settings for start(). */
export interface StartOptions {
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
  /** Wait until connections are accepted (default) or only until the postmaster runs. */
  wait?: "ready" | "running";
  timeoutMs: number;
  signal?: AbortSignal;
}

/** A provisioned sandbox. Always destroyed; `await using` does it. */
export interface Sandbox extends AsyncDisposable {
  readonly id: string;
  readonly runtime: string;
  readonly pgMajor: number;
  readonly connection: SandboxConnection;
  /** Data directory as the sandbox sees it. */
  readonly dataDir: string;
  /** How its processes are confined, in words, for the drill record. */
  readonly confinement?: string;
  /** Facts the drill record should carry (a private copy of an unreadable input, …). */
  readonly notes?: readonly string[];
  /** Where an input's host path appears inside the sandbox. */
  inputPath(hostPath: string): string;
  /**
   * Takes a file, or a directory of files, that a process of the sandbox wrote (`path` as the
   * sandbox sees it) out of the sandbox's reach before anything of the backup runs: the sandbox
   * can still read it (at `inputPath` of the result) but no longer change, replace or link it.
   * Returns the host path Attest reads it at. Absent: the runtime cannot (say so).
   */
  takeFile?(path: string): Promise<string>;
  /** Runs a program inside the sandbox as its unprivileged user; PostgreSQL tools by bare name. */
  exec(program: string, args: readonly string[], opts: SandboxExecOptions): Promise<RunResult>;
  /** Starts the server on the data directory. */
  start(opts: StartOptions): Promise<void>;
  /** Stops the server (fast shutdown). */
  stop(opts: { timeoutMs: number }): Promise<void>;
  /** Whether the server process is alive. */
  isRunning(): Promise<boolean>;
  /** The tail of the server log, for error messages. */
  logTail(lines: number): Promise<string>;
  /** Stops everything and removes all traces; safe to call twice. */
  destroy(): Promise<void>;
}

/** What a sweep of leftovers found and removed. */
export interface SweepReport {
  removed: string[];
  kept: string[];
}

/** A kind of sandbox. */
export interface Runtime {
  readonly name: string;
  /** Majors this runtime can provision now (installed binaries, present images). */
  availableMajors(): Promise<number[]>;
  provision(spec: SandboxSpec, signal?: AbortSignal): Promise<Sandbox>;
  /** Removes sandboxes left by runs whose process is gone. */
  sweep(): Promise<SweepReport>;
}

/** Picks the major to run for a backup of `wanted`, or explains why none fits. */
export function chooseMajor(
  wanted: number,
  available: readonly number[],
  allowNewer: boolean,
): { major: number } | { error: string } {
  const sorted = [...available].sort((a, b) => a - b);
  if (sorted.includes(wanted)) return { major: wanted };
  const newer = sorted.find((m) => m > wanted);
  if (allowNewer && newer !== undefined) return { major: newer };
  const have = sorted.length ? sorted.join(", ") : "none";
  return {
    error: allowNewer
      ? `backup is from PostgreSQL ${wanted}; no sandbox of that major or newer is available (have: ${have})`
      : `backup is from PostgreSQL ${wanted}; a physical restore needs exactly that major (have: ${have})`,
  };
}
