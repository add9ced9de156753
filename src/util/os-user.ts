/** OS users: who we are, and the unprivileged account sandboxes run as. */
import { readFileSync } from "node:fs";

/** An OS account. */
export interface OsUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Looks an account up in /etc/passwd; undefined when absent. */
export function lookupUser(name: string): OsUser | undefined {
  let text: string;
  try {
    text = readFileSync("/etc/passwd", "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 7)
      return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? "/" };
  }
  return undefined;
}

/** Whether this process runs as root. */
export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/**
 * Whether a process id is alive and, when `startTime` is given, is the same process. A zombie
 * has exited (it only waits for its parent to reap it), so it is not alive.
 */
export function processAlive(pid: number, startTime?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (processState(pid) === "Z") return false;
  if (startTime === undefined) return true;
  return processStartTime(pid) === startTime;
}

/** The state letter of a process (field 3 of /proc/PID/stat: R, S, D, Z, …), undefined when unknown. */
export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

/** The kernel's start time of a process (field 22 of /proc/PID/stat), to tell pid reuse apart. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name may hold spaces and parentheses: fields start after the last ')'
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19];
  } catch {
    return undefined;
  }
}
