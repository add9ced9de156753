/** Readies a restored data directory before its first start. */
import { posix } from "node:path";
import type { Sandbox } from "../../runtimes/runtime.js";
import { VerifierError } from "../../util/errors.js";
import {
  hardeningSettings,
  restoreCommand,
  SANDBOX_HBA,
  settingsFileText,
  targetSettings,
} from "./recovery-config.js";
import type { RecoveryPlan } from "./recovery-run.js";
import { sandboxSh, writeSandboxFile } from "./sandbox-shell.js";

/** Readies a restored data directory: no stale pid file, no standby mode, sandbox access, safe settings. */
export async function prepareDataDir(sandbox: Sandbox, plan: RecoveryPlan, notes: string[]): Promise<void> {
  const d = sandbox.dataDir;
  const present = (
    await sandboxSh(
      sandbox,
      'cd "$1" && for f in postmaster.pid postmaster.opts standby.signal recovery.signal postgresql.conf postgresql.auto.conf; do [ -e "$f" ] && echo "$f"; done; true',
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
  if (!present.includes("postgresql.conf")) {
    await writeSandboxFile(
      sandbox,
      posix.join(d, "postgresql.conf"),
      "# created by attest: the backup had no postgresql.conf\n",
    );
    notes.push(
      "the backup holds no postgresql.conf (kept outside the data directory); started with defaults",
    );
  }
  if (plan.target) await writeSandboxFile(sandbox, posix.join(d, "recovery.signal"), "");
  else if (present.includes("recovery.signal"))
    await sandboxSh(sandbox, 'rm -f -- "$1"', [posix.join(d, "recovery.signal")]);
  await writeSandboxFile(sandbox, posix.join(d, "attest_hba.conf"), SANDBOX_HBA);
  await writeSandboxFile(sandbox, posix.join(d, "attest_ident.conf"), "# written by attest\n");
  const settings = hardeningSettings(d);
  if (sandbox.pgMajor < 15) delete settings.archive_library;
  if (plan.target) {
    if (!plan.archiveDir)
      throw new VerifierError("archive recovery needs a WAL archive (wal_archive is not configured)");
    // in the file, not on the command line: a later line there overrides the backup's own settings
    Object.assign(
      settings,
      { restore_command: restoreCommand(plan.archiveDir) },
      targetSettings(plan.target),
    );
  }
  await writeSandboxFile(
    sandbox,
    posix.join(d, "postgresql.auto.conf"),
    settingsFileText(
      settings,
      "added by attest for a restore drill: keeps this copy away from the real primary and archive",
    ),
    "append",
  );
  // PostgreSQL refuses a data directory others can read
  await sandboxSh(sandbox, 'chmod 700 "$1"', [d]);
}
