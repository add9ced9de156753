/**
 * Non-executable sandbox directories: the backup's own files (its data directory) and every
 * directory the sandbox account may write are bind-mounted onto themselves with
 * nosuid,nodev,noexec, so a library the backup ships cannot be mapped as code (`CREATE FUNCTION
 * … AS './lib.so'`, LOAD). bubblewrap keeps these flags on the binds it makes and, inside its
 * user namespace, cannot clear them; a container's bind of such a directory inherits them.
 * Needs root; without it nothing is mounted.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { coerceError } from "../util/errors.js";
import { isRoot } from "../util/os-user.js";
import { runProcess } from "../util/process.js";

/**
 * The local sandbox's subdirectories made noexec: those its account writes, the private copies
 * of inputs, and the files taken out of its reach (a fetched dump's members are the backup's).
 */
export const NOEXEC_SUBDIRS = ["data", "home", "tmp", "sock", "inputs", "taken"] as const;

/** Binds `src` at `dest` (`--rbind`: its submounts too), then remounts that bind with `flags`. */
async function bindWith(src: string, dest: string, flags: string, recursive = false): Promise<void> {
  await runProcess("mount", [recursive ? "--rbind" : "--bind", "--", src, dest], { timeoutMs: 10_000 });
  await runProcess("mount", ["-o", `remount,bind,${flags}`, "--", dest], { timeoutMs: 10_000 });
}

/** Bind-mounts each path onto itself without exec, suid and devices; false when not root. */
export async function mountNoexec(paths: readonly string[]): Promise<boolean> {
  if (!isRoot()) return false;
  for (const p of paths) {
    try {
      await bindWith(p, p, "nosuid,nodev,noexec");
    } catch (err) {
      await unmountUnder(paths[0] ?? p).catch(() => {});
      throw new Error(`cannot make ${p} non-executable for the sandbox`, { cause: coerceError(err) });
    }
  }
  return true;
}

/**
 * Makes `src` (a backup's directory or file, outside the sandbox) visible at `dest` read-only
 * and without exec, suid and devices: the sandbox binds `dest` where it reads the input, so a
 * library shipped beside the backup cannot be mapped as code either. `dest` is made here (a
 * directory or an empty file, as `src` is) and unmounted with its parent (unmountUnder); its
 * own submounts keep their flags. False when not root (nothing is mounted, `src` is bound as is).
 */
export async function bindReadOnlyNoexec(src: string, dest: string): Promise<boolean> {
  if (!isRoot()) return false;
  mkdirSync(dirname(dest), { recursive: true, mode: 0o711 });
  if (statSync(src).isDirectory()) mkdirSync(dest, { mode: 0o755 });
  else writeFileSync(dest, "", { flag: "wx", mode: 0o644 });
  try {
    await bindWith(src, dest, "ro,nosuid,nodev,noexec", true);
  } catch (err) {
    await unmountUnder(dest).catch(() => {});
    throw new Error(`cannot bind ${src} read-only and non-executable for the sandbox`, {
      cause: coerceError(err),
    });
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
