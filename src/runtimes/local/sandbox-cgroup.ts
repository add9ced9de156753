/**
 * A control group per local sandbox: one memory limit and one process limit for everything the
 * sandbox runs, so a backup's code cannot take the verifier host's memory. Works with cgroup v2
 * and with the v1 memory and pids hierarchies; needs root. Processes join it themselves before
 * they exec bubblewrap (a tiny sh wrapper), so nothing the sandbox starts is ever outside it.
 */
import {
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { isRoot, type OsUser, processAlive, processStartTime } from "../../util/os-user.js";

const ROOT = "/sys/fs/cgroup";
const PARENT = "attest-sandboxes";
/**
 * A group's name starts with the pid and start time of the Attest process that made it: groups
 * are shared by every Attest run on the host (whatever its work directory), and only a group
 * whose maker is gone may be swept by another run.
 */
const OWNER = /^(\d+)-(\d+)-/;

/** A sandbox's control group(s): the cgroup.procs files a process writes itself into. */
export interface SandboxCgroup {
  /** Directories of the group, one per hierarchy. */
  readonly dirs: readonly string[];
  /** What it limits, in words, for the drill record. */
  readonly description: string;
  /** `cmd args` wrapped so the process joins the group before it execs `cmd`. */
  wrap(cmd: string, args: readonly string[]): { cmd: string; args: string[] };
  /** Removes the group (its processes must be gone). */
  remove(): void;
}

function isV2(): boolean {
  return existsSync(join(ROOT, "cgroup.controllers"));
}

/** The hierarchies to use: v2's root, or v1's memory and pids roots. */
function hierarchies(): Array<{ root: string; kind: "v2" | "memory" | "pids" }> {
  if (isV2()) return [{ root: ROOT, kind: "v2" }];
  const out: Array<{ root: string; kind: "v2" | "memory" | "pids" }> = [];
  if (existsSync(join(ROOT, "memory", "cgroup.procs")))
    out.push({ root: join(ROOT, "memory"), kind: "memory" });
  if (existsSync(join(ROOT, "pids", "cgroup.procs"))) out.push({ root: join(ROOT, "pids"), kind: "pids" });
  return out;
}

/**
 * Creates the control group of sandbox `id` with `memoryBytes` and `maxProcesses`; undefined
 * when this host gives none (not root, no writable cgroup filesystem), and the caller says so.
 */
export function createSandboxCgroup(
  id: string,
  user: OsUser | undefined,
  limits: { memoryBytes: number; maxProcesses: number },
): SandboxCgroup | undefined {
  if (!isRoot()) return undefined;
  const made: string[] = [];
  try {
    for (const h of hierarchies()) {
      const parent = join(h.root, PARENT);
      mkdirSync(parent, { recursive: true });
      if (h.kind === "v2") {
        // controllers must be enabled on the way down for the child to have its files
        for (const dir of [h.root, parent]) {
          const wanted = ["memory", "pids"].filter((c) =>
            readFileSync(join(dir, "cgroup.controllers"), "utf8").split(/\s+/).includes(c),
          );
          if (wanted.length)
            writeFileSync(join(dir, "cgroup.subtree_control"), wanted.map((c) => `+${c}`).join(" "));
        }
      }
      const dir = join(parent, `${process.pid}-${processStartTime(process.pid) ?? 0}-${id}`);
      mkdirSync(dir);
      made.push(dir);
      if (h.kind === "v2") {
        writeFileSync(join(dir, "memory.max"), String(limits.memoryBytes));
        if (existsSync(join(dir, "memory.swap.max"))) writeFileSync(join(dir, "memory.swap.max"), "0");
        writeFileSync(join(dir, "pids.max"), String(limits.maxProcesses));
      } else if (h.kind === "memory") {
        writeFileSync(join(dir, "memory.limit_in_bytes"), String(limits.memoryBytes));
      } else {
        writeFileSync(join(dir, "pids.max"), String(limits.maxProcesses));
      }
      // the sandbox's own processes put themselves in; they cannot leave (every other group is root's)
      if (user) chownSync(join(dir, "cgroup.procs"), user.uid, user.gid);
    }
  } catch {
    for (const d of made.reverse()) tryRmdir(d);
    return undefined;
  }
  if (made.length === 0) return undefined;
  const procs = made.map((d) => join(d, "cgroup.procs"));
  const mib = Math.round(limits.memoryBytes / 1048576);
  return {
    dirs: made,
    description: `memory ${mib} MiB and ${limits.maxProcesses} processes for the whole sandbox (cgroup)`,
    wrap(cmd, args) {
      const joins = procs.map((_, i) => `echo $$ > "$${i + 1}"`).join(" && ");
      return {
        cmd: "/bin/sh",
        args: ["-c", `${joins} && shift ${procs.length} && exec "$@"`, "sh", ...procs, cmd, ...args],
      };
    },
    remove() {
      for (const d of made) tryRmdir(d);
    },
  };
}

function tryRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // still has processes (they are being killed) or already gone: the next sweep removes it
  }
}

/**
 * Removes the empty groups of Attest processes that are gone (after a crash). A group of a
 * running Attest process is never touched: another run's sandbox may be about to join it.
 */
export function sweepSandboxCgroups(): string[] {
  if (!isRoot()) return [];
  const removed: string[] = [];
  for (const h of hierarchies()) {
    const parent = join(h.root, PARENT);
    if (!existsSync(parent)) continue;
    for (const name of readdirSync(parent, { withFileTypes: true })) {
      if (!name.isDirectory()) continue;
      const owner = OWNER.exec(name.name);
      // a start time of 0 was unknown when the group was made: the pid alone then decides
      if (owner && processAlive(Number(owner[1]), owner[2] === "0" ? undefined : owner[2])) continue;
      const dir = join(parent, name.name);
      const procs = readFileSync(join(dir, "cgroup.procs"), "utf8").trim();
      if (procs) continue;
      tryRmdir(dir);
      if (!existsSync(dir)) removed.push(dir);
    }
  }
  return removed;
}
