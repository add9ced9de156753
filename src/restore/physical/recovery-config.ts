/** Settings for a restored cluster: how it reads the archive, where it stops, what it must not do. */
import type { RecoveryTarget } from "../../model.js";
import { shellQuote } from "./sandbox-shell.js";

/**
 * A restore_command that copies (or decompresses) from the archive into pg_wal and never
 * writes into the archive. Missing files exit 1 quietly, as recovery expects.
 */
export function restoreCommand(archiveDir: string): string {
  // PostgreSQL replaces %f/%p and reads %% as one %
  const dir = shellQuote(archiveDir.replace(/\/+$/, "")).replace(/%/g, "%%");
  return [
    `f=${dir}/"%f";`,
    `if [ -f "$f" ]; then exec cp "$f" "%p";`,
    `elif [ -f "$f.gz" ]; then exec gzip -dc "$f.gz" > "%p";`,
    `elif [ -f "$f.lz4" ]; then exec lz4 -dcq "$f.lz4" > "%p";`,
    `elif [ -f "$f.zst" ]; then exec zstd -dcq "$f.zst" > "%p";`,
    "else exit 1; fi",
  ].join(" ");
}

const TARGET_SETTINGS = [
  "recovery_target",
  "recovery_target_lsn",
  "recovery_target_name",
  "recovery_target_time",
  "recovery_target_xid",
] as const;

/**
 * The recovery_target* settings of a target, in the order they must be applied: every other
 * target is cleared first (a target the backup's own configuration sets would otherwise
 * clash: "multiple recovery targets specified"), the chosen one last. Meant for a
 * configuration file, where a later line overrides an earlier one.
 */
export function targetSettings(target: RecoveryTarget): Record<string, string> {
  const chosen: Partial<Record<(typeof TARGET_SETTINGS)[number], string>> = {};
  if (target.kind === "immediate") chosen.recovery_target = "immediate";
  if (target.kind === "time") chosen.recovery_target_time = pgTimestamp(target.time);
  if (target.kind === "lsn") chosen.recovery_target_lsn = target.lsn;
  const s: Record<string, string> = {};
  for (const k of TARGET_SETTINGS) if (!(k in chosen)) s[k] = "";
  Object.assign(s, chosen);
  // an LSN is a position on one timeline history: follow the one it was taken on, not the newest
  s.recovery_target_timeline =
    target.kind === "lsn" && target.timeline !== undefined ? String(target.timeline) : "latest";
  s.recovery_target_action = "promote";
  s.recovery_target_inclusive = "on";
  return s;
}

/**
 * An ISO time as recovery_target_time accepts it when parsed at server start: a numeric
 * UTC offset, because zone abbreviations such as "Z" are not loaded yet then.
 */
export function pgTimestamp(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) throw new Error(`"${iso}" is not a time`);
  return `${d.toISOString().replace("T", " ").replace("Z", "")}+00`;
}

/** Words for a target, for reasons and notes. */
export function describeTarget(target: RecoveryTarget): string {
  switch (target.kind) {
    case "immediate":
      return "the backup's consistency point";
    case "latest":
      return "the end of the WAL archive";
    case "time":
      return `time ${target.time}`;
    case "lsn":
      return `LSN ${target.lsn}${target.timeline !== undefined ? ` on timeline ${target.timeline}` : ""}${target.nextBackup ? ` (the start of the next backup, ${target.nextBackup})` : ""}`;
  }
}

/**
 * The base of the configuration Attest writes for a restored cluster (the backup's own is set
 * aside): nothing connects to the real primary, archives, waits for a sync standby, loads a
 * library, needs huge pages or certificates. In postgresql.conf, so they also hold after a restart.
 */
export function hardeningSettings(dataDir: string): Record<string, string> {
  return {
    hba_file: `${dataDir}/attest_hba.conf`,
    ident_file: `${dataDir}/attest_ident.conf`,
    archive_mode: "off",
    archive_command: "",
    archive_library: "",
    restore_command: "",
    archive_cleanup_command: "",
    recovery_end_command: "",
    primary_conninfo: "",
    primary_slot_name: "",
    recovery_min_apply_delay: "0",
    synchronous_standby_names: "",
    ssl: "off",
    shared_buffers: "128MB",
    huge_pages: "try",
    external_pid_file: "",
    // a backup's config could name any file as a library (one shipped inside the backup):
    // nothing is preloaded, and libraries resolve only in the sandbox's own $libdir
    shared_preload_libraries: "",
    local_preload_libraries: "",
    session_preload_libraries: "",
    dynamic_library_path: "$libdir",
    ssl_passphrase_command: "",
    log_destination: "stderr",
    logging_collector: "off",
    lc_messages: "C",
    hot_standby: "on",
  };
}

/**
 * Settings only the recovery start needs (on the command line, not persisted). With
 * `hotStandby` false the server takes no connection until promotion (a recovery that must see
 * no SQL while the store's keys are in the sandbox), and logs every connection as evidence.
 */
export function recoveryStartSettings(hotStandby = true): Record<string, string> {
  return {
    log_min_messages: "log",
    timezone: "UTC",
    log_timezone: "UTC",
    lc_messages: "C",
    hot_standby: hotStandby ? "on" : "off",
    ...(hotStandby ? {} : { log_connections: "on" }),
  };
}

/** Renders settings as configuration file lines. */
export function settingsFileText(settings: Record<string, string>, comment: string): string {
  const lines = [`# ${comment}`];
  for (const [k, v] of Object.entries(settings))
    lines.push(`${k} = '${v.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`);
  return `\n${lines.join("\n")}\n`;
}

/** pg_hba.conf of a restored sandbox: trust on its private socket, passwords over loopback TCP. */
export const SANDBOX_HBA = [
  "# written by attest for a restore drill",
  "local all all trust",
  "host all all 127.0.0.1/32 scram-sha-256",
  "host all all ::1/128 scram-sha-256",
  "",
].join("\n");
