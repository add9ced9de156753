/**
 * Non-executable sandbox directories: the backup's own files (its data directory) and every
 * directory the sandbox account may write are bind-mounted onto themselves with
 * nosuid,nodev,noexec, so a library the backup ships cannot be mapped as code (`CREATE FUNCTION
 * … AS './lib.so'`, LOAD). bubblewrap keeps these flags on the binds it makes and, inside its
 * user namespace, cannot clear them; a container's bind of such a directory inherits them.
 * Needs root; without it nothing is mounted.
 */
import { readFileSync } from "node:fs";
import { coerceError } from "../util/errors.js";
import { isRoot } from "../util/os-user.js";
import { runProcess } from "../util/process.js";

/** The sandbox's subdirectories its account writes (made noexec). */
export const NOEXEC_SUBDIRS = ["data", "home", "tmp", "sock"] as const;

/** Bind-mounts each path onto itself without exec, suid and devices; false when not root. */
export async function mountNoexec(paths: readonly string[]): Promise<boolean> {
  if (!isRoot()) return false;
  for (const p of paths) {
    try {
      await runProcess("mount", ["--bind", "--", p, p], { timeoutMs: 10_000 });
      await runProcess("mount", ["-o", "remount,bind,nosuid,nodev,noexec", "--", p], { timeoutMs: 10_000 });
    } catch (err) {
      await unmountUnder(paths[0] ?? p).catch(() => {});
      throw new Error(`cannot make ${p} non-executable for the sandbox`, { cause: coerceError(err) });
    }
  }
  return true;
}

/** Unmounts every mount at or below `dir` (deepest first, lazily when busy). */
export async function unmountUnder(dir: string): Promise<void> {
  if (!isRoot()) return;
  const base = dir.replace(/\/+$/, "");
  for (const m of mountPointsUnder(base)) {
    const r = await runProcess("umount", ["--", m], { timeoutMs: 10_000, allowFailure: true });
    if (r.code !== 0) await runProcess("umount", ["-l", "--", m], { timeoutMs: 10_000, allowFailure: true });
  }
}

/** Mount points at or below `base` in this process's mount table, deepest (and latest) first. */
export function mountPointsUnder(base: string): string[] {
  let text: string;
  try {
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const field = line.split(" ")[4];
    if (!field) continue;
    // mountinfo escapes space, tab, newline and backslash as \ooo
    const point = field.replace(/\\([0-7]{3})/g, (_, o: string) =>
      String.fromCharCode(Number.parseInt(o, 8)),
    );
    if (point === base || point.startsWith(`${base}/`)) out.push(point);
  }
  return out.reverse().sort((a, b) => b.length - a.length);
}
