/**
 * The configuration a restored cluster starts with. Attest writes all of it: the backup's own
 * postgresql.conf / postgresql.auto.conf are set aside unread by the server, because a setting
 * there can point the server at any host path (data_directory, hba_file, include*, a library).
 * Only the few settings recovery needs at least as high as the primary had are carried over,
 * by name, and only when their value is a plain number in PostgreSQL's own range.
 */
import { posix } from "node:path";
import type { Sandbox } from "../../runtimes/runtime.js";
import { sandboxSh } from "./sandbox-shell.js";

/** The backup's configuration files, as the server would have read them. */
export const BACKUP_CONFIG_FILES = ["postgresql.conf", "postgresql.auto.conf"] as const;

/** Suffix of the backup's configuration files once set aside. */
export const SET_ASIDE_SUFFIX = ".attest-ignored";

/**
 * Settings hot standby recovery refuses to run below the primary's value (PostgreSQL checks
 * them against pg_control), plus max_replication_slots (startup fails below the slots a
 * snapshot holds). Each with the range PostgreSQL accepts and its pg_controldata label.
 */
const CARRIED: Record<string, { min: number; max: number; control?: string }> = {
  max_connections: { min: 1, max: 262143, control: "max_connections setting" },
  max_worker_processes: { min: 0, max: 262143, control: "max_worker_processes setting" },
  max_wal_senders: { min: 0, max: 262143, control: "max_wal_senders setting" },
  max_prepared_transactions: { min: 0, max: 262143, control: "max_prepared_xacts setting" },
  max_locks_per_transaction: { min: 10, max: 2147483647, control: "max_locks_per_xact setting" },
  max_replication_slots: { min: 0, max: 262143 },
};

/** Names of the settings carried over from the backup (nothing else of its configuration is). */
export const CARRIED_SETTINGS: readonly string[] = [...Object.keys(CARRIED), "wal_level"];

// a configuration line: name [=] value [# comment]; include directives have no `=` and never match
const LINE = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*('(?:[^'\\]|''|\\.)*'|[^\s#']+)\s*(?:#.*)?$/;

/**
 * The carried settings a configuration text sets (the last assignment wins, as in PostgreSQL).
 * Everything else, include directives first of all, is ignored: nothing the text names is read.
 */
export function carriedFromConfig(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const m = LINE.exec(raw);
    if (!m) continue;
    const name = m[1]!.toLowerCase();
    if (!CARRIED_SETTINGS.includes(name)) continue;
    let value = m[2]!;
    if (value.startsWith("'")) value = value.slice(1, -1).replace(/''/g, "'");
    const valid = validCarried(name, value);
    if (valid !== undefined) out[name] = valid;
  }
  return out;
}

/** The value as the sandbox may use it, or undefined when it is not a plain value in range. */
export function validCarried(name: string, value: string): string | undefined {
  const v = value.trim().toLowerCase();
  if (name === "wal_level") return v === "logical" ? "logical" : undefined;
  const spec = CARRIED[name];
  if (!spec || !/^\d{1,10}$/.test(v)) return undefined;
  const n = Number(v);
  return n >= spec.min && n <= spec.max ? String(n) : undefined;
}

/** The carried settings pg_control records (`pg_controldata` output). */
export function carriedFromControlData(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(CARRIED)) {
    if (!spec.control) continue;
    const m = new RegExp(`^${spec.control}:\\s*(\\d+)\\s*$`, "m").exec(text);
    const valid = m ? validCarried(name, m[1]!) : undefined;
    if (valid !== undefined) out[name] = valid;
  }
  if (/^wal_level setting:\s*logical\s*$/m.test(text)) out.wal_level = "logical";
  return out;
}

/** For each setting, the highest of the sources (every carried setting is a lower bound). */
export function highest(...sources: Array<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const src of sources) {
    for (const [k, v] of Object.entries(src)) {
      if (k === "wal_level") out[k] = v;
      else if (out[k] === undefined || Number(v) > Number(out[k])) out[k] = v;
    }
  }
  return out;
}

/**
 * Sets the backup's configuration files aside (renamed, never read by the server) and returns
 * the carried settings found in them and in pg_control.
 */
export async function setAsideBackupConfig(
  sandbox: Sandbox,
  notes: string[],
): Promise<Record<string, string>> {
  const d = sandbox.dataDir;
  // at most 1 MiB of each: a configuration file is a few kB, and nothing in it is followed
  const r = await sandboxSh(
    sandbox,
    'cd "$1" || exit 1; for f in postgresql.conf postgresql.auto.conf; do if [ -f "$f" ] && [ ! -L "$f" ]; then head -c 1048576 "$f"; fi; printf "\\n"; done',
    [d],
  );
  const fromConfig = carriedFromConfig(r.stdout);
  const moved = await sandboxSh(
    sandbox,
    'cd "$1" || exit 1; s=$2; shift 2; for f in "$@"; do if [ -e "$f" ] || [ -L "$f" ]; then rm -rf -- "$f$s" && mv -f -- "$f" "$f$s" && echo "$f"; fi; done',
    [d, SET_ASIDE_SUFFIX, ...BACKUP_CONFIG_FILES],
  );
  const names = moved.stdout.split("\n").filter(Boolean);
  if (names.length)
    notes.push(
      `the backup's ${names.join(" and ")} set aside (renamed *${SET_ASIDE_SUFFIX}): the sandbox runs on a configuration Attest wrote`,
    );
  const control = await sandbox.exec("pg_controldata", [d], {
    timeoutMs: 30_000,
    allowFailure: true,
    env: { LC_ALL: "C", LANG: "C" },
  });
  const fromControl = control.code === 0 ? carriedFromControlData(control.stdout) : {};
  const carried = highest(fromConfig, fromControl);
  if (Object.keys(carried).length)
    notes.push(
      `carried over from the backup (at least the primary's values): ${Object.entries(carried)
        .map(([k, v]) => `${k}=${v}`)
        .join(", ")}`,
    );
  return carried;
}

/** Renders a whole configuration file. */
export function configFileText(settings: Record<string, string>, comment: string): string {
  const lines = [`# ${comment}`];
  for (const [k, v] of Object.entries(settings))
    lines.push(`${k} = '${v.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`);
  return `${lines.join("\n")}\n`;
}

/** Path of a file in the data directory. */
export function inDataDir(sandbox: Sandbox, name: string): string {
  return posix.join(sandbox.dataDir, name);
}
