/**
 * Inputs the sandbox user cannot read (a base backup pg_basebackup wrote 0600/0700 as the host's
 * postgres): Attest copies them into the sandbox's own host directory, hands the copy to the
 * sandbox user and mounts it read-only, so the user's backup is never chmod-ed.
 */
import { lstat, readdir, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { VerifierError } from "../../util/errors.js";
import { isRoot } from "../../util/os-user.js";
import { lastLines, runProcess } from "../../util/process.js";
import type { SandboxIds } from "./docker-host-dir.js";

const READ = 4;
const EXEC = 1;
/** Host tools get a fixed, minimal environment: nothing of Attest's own. */
const TOOL_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" };

/** Whether `ids` may read (and, for a directory, enter) an entry with this mode and owner. */
function permits(st: { mode: number; uid: number; gid: number }, ids: SandboxIds, want: number): boolean {
  const shift = st.uid === ids.uid ? 6 : st.gid === ids.gid || ids.groups.includes(st.gid) ? 3 : 0;
  return ((st.mode >> shift) & want) === want;
}

/**
 * The first path under `path` the sandbox user cannot read, or undefined when all is readable.
 * The input itself is followed as the bind mount follows it; symbolic links inside are not
 * (inside the container they point into the container, not at the host).
 */
export async function firstUnreadable(path: string, ids: SandboxIds): Promise<string | undefined> {
  const top = await stat(path);
  type Entry = { mode: number; uid: number; gid: number; isDirectory(): boolean };
  const walk = async (p: string, st: Entry): Promise<string | undefined> => {
    if (!st.isDirectory()) return permits(st, ids, READ) ? undefined : p;
    if (!permits(st, ids, READ | EXEC)) return p;
    for (const name of await readdir(p)) {
      const child = join(p, name);
      const cst = await lstat(child);
      if (cst.isSymbolicLink()) continue;
      const found = await walk(child, cst);
      if (found) return found;
    }
    return undefined;
  };
  return walk(path, top);
}

/**
 * Copies `source` into `copiesDir/<n>/<name>` (reflinked where the filesystem can), then hands it
 * to the sandbox user: owned by it and private when Attest is root, readable by all otherwise
 * (the enclosing sandbox directory is Attest's and 0700). Returns the copy's host path.
 */
export async function privateCopy(
  source: string,
  copiesDir: string,
  n: number,
  ids: SandboxIds,
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<string> {
  const slot = join(copiesDir, String(n));
  const dest = join(slot, basename(source) || "input");
  const run = async (cmd: string, args: string[]) => {
    const r = await runProcess(cmd, args, { ...opts, env: TOOL_ENV, allowFailure: true });
    if (r.code !== 0) {
      throw new VerifierError(
        `could not make a private copy of ${source} for the sandbox (${cmd}: ${lastLines(r.stderrTail, 2) || `exit ${r.code}`})`,
      );
    }
  };
  await run("mkdir", ["-p", "-m", "0700", slot]);
  // -H: the input itself is followed, as its bind mount is; links inside stay links
  await run("cp", ["-R", "-H", "--reflink=auto", "--", source, dest]);
  if (isRoot()) {
    await run("chown", ["-R", "-h", `${ids.uid}:${ids.gid}`, slot]);
    await run("chmod", ["-R", "u+rX,go-rwx", slot]);
  } else {
    await run("chmod", ["-R", "a+rX", slot]);
  }
  return dest;
}
