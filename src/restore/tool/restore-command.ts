/** A sandbox whose server starts with a tool's restore_command (pgbackrest archive-get, barman-cloud-wal-restore). */
import { posix } from "node:path";
import type { Sandbox, StartOptions } from "../../runtimes/runtime.js";
import { settingsFileText } from "../physical/recovery-config.js";
import { writeSandboxFile } from "../physical/sandbox-shell.js";

/**
 * The sandbox, except that start() first appends `command` as restore_command to
 * postgresql.auto.conf (commented with `why`): the shared recovery start writes a copying
 * restore_command for a plain WAL archive, and the last line of the file wins.
 */
export function withRestoreCommand(sandbox: Sandbox, command: string, why: string): Sandbox {
  const autoConf = posix.join(sandbox.dataDir, "postgresql.auto.conf");
  return {
    id: sandbox.id,
    runtime: sandbox.runtime,
    pgMajor: sandbox.pgMajor,
    connection: sandbox.connection,
    dataDir: sandbox.dataDir,
    inputPath: (p) => sandbox.inputPath(p),
    exec: (program, args, opts) => sandbox.exec(program, args, opts),
    async start(opts: StartOptions) {
      await writeSandboxFile(
        sandbox,
        autoConf,
        settingsFileText({ restore_command: command }, `added by attest: ${why}`),
        "append",
      );
      await sandbox.start(opts);
    },
    stop: (opts) => sandbox.stop(opts),
    isRunning: () => sandbox.isRunning(),
    logTail: (n) => sandbox.logTail(n),
    destroy: () => sandbox.destroy(),
    [Symbol.asyncDispose]: () => sandbox[Symbol.asyncDispose](),
  };
}
