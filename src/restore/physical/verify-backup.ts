/** pg_verifybackup of an extracted base backup against its manifest: a mismatch means the backup is bad. */
import { posix } from "node:path";
import type { Sandbox } from "../../runtimes/runtime.js";
import { BackupDefectError, VerifierError } from "../../util/errors.js";
import type { RestoreContext } from "../restorer.js";
import { TABLESPACE_DIR } from "./extract.js";
import { sandboxSh } from "./sandbox-shell.js";

/**
 * Runs pg_verifybackup on the sandbox's data directory against `manifest`, a path as the sandbox
 * sees it (a host input goes through `sandbox.inputPath` first); returns a note, throws on a mismatch.
 */
export async function verifyBackup(sandbox: Sandbox, manifest: string, ctx: RestoreContext): Promise<string> {
  const data = sandbox.dataDir;
  // WAL inside the backup (-X fetch/stream) is parsed too; WAL kept in the archive is not (-n)
  const hasWal =
    (
      await sandboxSh(sandbox, 'ls "$1" 2>/dev/null | grep -qE "^[0-9A-F]{24}$" && echo yes; true', [
        posix.join(data, "pg_wal"),
      ])
    ).stdout.trim() === "yes";
  const args = ["-m", manifest, "-i", TABLESPACE_DIR, ...(hasWal ? [] : ["-n"]), data];
  ctx.progress("pg_verifybackup");
  const r = await sandbox.exec("pg_verifybackup", args, {
    timeoutMs: Math.max(60_000, ctx.timeoutMs),
    allowFailure: true,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  if (r.code === 0)
    return `pg_verifybackup: every file matches the manifest${hasWal ? " and the included WAL parses" : " (WAL is checked by the replay)"}`;
  const errors = r.stderrTail
    .split("\n")
    .map((l) => l.replace(/^pg_verifybackup:\s*/, "").trim())
    .filter((l) => l && !/^hint:|^detail:/i.test(l));
  const msg = errors.slice(0, 4).join("; ") || `exited with code ${r.code}`;
  if (r.timedOut || /Permission denied|could not execute|command not found|No space left/i.test(msg)) {
    throw new VerifierError(`pg_verifybackup could not run: ${msg}`);
  }
  throw new BackupDefectError(`pg_verifybackup: ${msg}`);
}
