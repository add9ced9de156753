// Prints, one `name=value` a line, the server settings an Attest local sandbox starts with,
// so the native run uses exactly the same throwaway configuration. THROWAWAY_SETTINGS comes
// from the compiled Attest (dist/), the rest mirrors LocalRuntime.provision / LocalSandbox.start
// (wal_level and max_wal_senders are passed by provision; archive/logging are forced by start).
// Port, listen_addresses and unix_socket_directories are set by the caller.
//   node bench/pg-settings.mjs [DIST_DIR] [--physical]
// --physical: the settings a physical restore starts its recovery with instead (no wal_level or
// max_wal_senders: the backup's own stay; plus recoveryStartSettings() of the physical restorer).
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const physical = args.includes("--physical");
const distArg = args.find((a) => !a.startsWith("--"));
const dist = resolve(distArg ?? new URL("../dist", import.meta.url).pathname);
const { THROWAWAY_SETTINGS } = await import(pathToFileURL(`${dist}/runtimes/local/local-sandbox.js`).href);

let settings;
if (physical) {
  const { recoveryStartSettings } = await import(
    pathToFileURL(`${dist}/restore/physical/recovery-config.js`).href
  );
  settings = {
    ...THROWAWAY_SETTINGS,
    ...recoveryStartSettings(),
    archive_mode: "off",
    archive_command: "",
    logging_collector: "off",
  };
} else {
  settings = {
    ...THROWAWAY_SETTINGS,
    wal_level: "minimal",
    max_wal_senders: "0",
    archive_mode: "off",
    archive_command: "",
    logging_collector: "off",
  };
}
for (const [k, v] of Object.entries(settings)) process.stdout.write(`${k}=${v}\n`);
