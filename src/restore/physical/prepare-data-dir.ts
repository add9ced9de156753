/**
 * Readies a restored data directory before its first start. Attest writes the whole
 * configuration the server reads (postgresql.conf, postgresql.auto.conf, hba and ident files):
 * the backup's own files are set aside, and only the settings recovery needs are carried over.
 */
import { posix } from "node:path";
import type { Sandbox } from "../../runtimes/runtime.js";
import { VerifierError } from "../../util/errors.js";
import { containDataDir } from "./contain-data-dir.js";
import { hardeningSettings, restoreCommand, SANDBOX_HBA, targetSettings } from "./recovery-config.js";
import type { RecoveryPlan } from "./recovery-run.js";
import { sandboxSh, writeSandboxFile } from "./sandbox-shell.js";
import { configFileText, setAsideBackupConfig } from "./server-config.js";

/** Readies a restored data directory: no stale pid file, no standby mode, no path out, Attest's configuration. */
export async function prepareDataDir(sandbox: Sandbox, plan: RecoveryPlan, notes: string[]): Promise<void> {
  const d = sandbox.dataDir;
  const present = (
    await sandboxSh(
      sandbox,
      'cd "$1" && for f in postmaster.pid postmaster.opts standby.signal recovery.signal postgresql.conf; do [ -e "$f" ] && echo "$f"; done; true',
      [d],
    )
  ).stdout
    .split("\n")
    .filter(Boolean);
  const remove = ["postmaster.pid", "postmaster.opts", "standby.signal"].filter((f) => present.includes(f));
  if (remove.length) {
    await sandboxSh(sandbox, 'cd "$1" && shift && rm -f -- "$@"', [d, ...remove]);
    if (remove.includes("standby.signal"))
      notes.push("standby.signal removed: the restore must end, not follow a primary");
    if (remove.includes("postmaster.pid"))
      notes.push("stale postmaster.pid removed (copied from a running server)");
  }
  // every restorer's data directory passes here before the first start
  notes.push(...(await containDataDir(sandbox, plan.contain ?? {})));
  if (!present.includes("postgresql.conf"))
    notes.push("the backup holds no postgresql.conf (kept outside the data directory)");
  const carried = await setAsideBackupConfig(sandbox, notes);

  if (plan.target) await writeSandboxFile(sandbox, posix.join(d, "recovery.signal"), "");
  else if (present.includes("recovery.signal"))
    await sandboxSh(sandbox, 'rm -f -- "$1"', [posix.join(d, "recovery.signal")]);
  await writeSandboxFile(sandbox, posix.join(d, "attest_hba.conf"), SANDBOX_HBA);
  await writeSandboxFile(sandbox, posix.join(d, "attest_ident.conf"), "# written by attest\n");
  const settings: Record<string, string> = { ...hardeningSettings(d), ...carried };
  if (sandbox.pgMajor < 15) delete settings.archive_library;
  if (plan.target) {
    if (!plan.archiveDir)
      throw new VerifierError("archive recovery needs a WAL archive (wal_archive is not configured)");
    Object.assign(
      settings,
      { restore_command: restoreCommand(plan.archiveDir) },
      targetSettings(plan.target),
    );
  }
  await writeSandboxFile(
    sandbox,
    posix.join(d, "postgresql.conf"),
    configFileText(
      settings,
      "written by attest for a restore drill: the backup's own configuration is not used",
    ),
  );
  // read after postgresql.conf; ALTER SYSTEM writes here, so it starts empty rather than absent
  await writeSandboxFile(
    sandbox,
    posix.join(d, "postgresql.auto.conf"),
    "# written by attest for a restore drill\n",
  );
  // PostgreSQL refuses a data directory others can read
  await sandboxSh(sandbox, 'chmod 700 "$1"', [d]);
}
