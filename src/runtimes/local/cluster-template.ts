/**
 * A fresh cluster made once per PostgreSQL installation and sandbox account, then copied into
 * each `init` sandbox: initdb costs about a second under confinement, a copy of its ~40 MB a
 * third of that. The template is Attest's own initdb output (no backup was ever near it), kept
 * in `attest-templates/` beside the sandboxes' directory, which only Attest's account can
 * enter; a sandbox sees nothing of it but its own copy. The Docker image bakes the same thing in (docker/build-sandbox-image.sh).
 */
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { OsUser } from "../../util/os-user.js";
import { runProcess } from "../../util/process.js";

/** initdb's arguments for every sandbox cluster, the data directory and password file aside. */
export const INITDB_ARGS: readonly string[] = [
  "-U",
  "postgres",
  "--auth-local=trust",
  "--auth-host=scram-sha-256",
  "-E",
  "UTF8",
  "--locale=C.UTF-8",
  "--no-sync",
];

/**
 * Where the template for these binaries and this account lives under `workDir`: named after
 * the `postgres` binary (path, size, time), so an upgraded installation gets a template of its own.
 */
export function templateDir(workDir: string, binDir: string, user: OsUser | undefined): string {
  const bin = statSync(join(binDir, "postgres"));
  const key = createHash("sha256")
    .update(
      [binDir, bin.size, bin.mtimeMs, user ? `${user.uid}:${user.gid}` : "-", ...INITDB_ARGS].join("\0"),
    )
    .digest("hex")
    .slice(0, 16);
  return join(workDir, "attest-templates", key);
}

/** Copies the template into the (empty) data directory; false when there is no template yet. */
export async function copyTemplate(
  template: string,
  dataDir: string,
  signal?: AbortSignal,
): Promise<boolean> {
  if (!existsSync(join(template, "PG_VERSION"))) return false;
  // -a keeps the sandbox account's ownership and modes; /. copies into the existing directory
  await runProcess("cp", ["-a", "--reflink=auto", "--", `${template}/.`, dataDir], {
    timeoutMs: 600_000,
    ...(signal ? { signal } : {}),
  });
  chmodSync(dataDir, 0o700);
  return true;
}

/**
 * Keeps a copy of a data directory initdb just made (before its server ever started) as the
 * template; another process that made one first wins, this copy is dropped.
 */
export async function keepTemplate(dataDir: string, template: string, signal?: AbortSignal): Promise<void> {
  const parent = join(template, "..");
  // 0700: no sandbox account may enter, let alone change what later sandboxes start from
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  chmodSync(parent, 0o700);
  const tmp = `${template}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await runProcess("cp", ["-a", "--reflink=auto", "--", dataDir, tmp], {
      timeoutMs: 600_000,
      ...(signal ? { signal } : {}),
    });
    if (!existsSync(template)) renameSync(tmp, template);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
