/** Loading a configuration file: YAML → references → paths → schema → frozen Config. */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { UsageError } from "../util/errors.js";
import { resolveReferences, UnresolvedReferenceError } from "./references.js";
import { type Config, configSchema } from "./schema.js";

/** A configuration error: names the key path and the reason. Exit code 2. */
export class ConfigError extends UsageError {
  constructor(
    readonly file: string,
    readonly issues: string[],
  ) {
    super(`${file}: ${issues.join("; ")}`);
  }
}

/** Keys whose string values are paths, resolved against the config file's folder. */
const PATH_KEYS = new Set([
  "path",
  "wal_archive",
  "globals",
  "csv",
  "dir",
  "config_file",
  "key_file",
  "ca_file",
  "work_dir",
  "outbox",
  "bin_dir",
  "backup_label",
  "backup_labels",
  "state_dir",
  "lock_file",
]);

function resolvePaths(value: unknown, base: string, key = ""): unknown {
  if (typeof value === "string" && PATH_KEYS.has(key)) {
    if (value.startsWith("~/")) return resolve(homedir(), value.slice(2));
    return isAbsolute(value) ? value : resolve(base, value);
  }
  if (Array.isArray(value)) return value.map((v) => resolvePaths(v, base, key));
  // only plain mappings: anything else a schema produced (a Date, a RegExp) is not a section
  if (value && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    // a source that reads a store (`storage:`) has a key prefix as its path, not a host path
    // (and so has an `objects` check, which names a store and a query)
    const inStore = "storage" in value && ("type" in value || "sql" in value);
    for (const [k, v] of Object.entries(value))
      out[k] = (k === "path" || k === "wal_archive") && inStore ? v : resolvePaths(v, base, k);
    return out;
  }
  return value;
}

/** Formats a zod issue path the way users read it: `sources[1].path`. */
export function formatIssuePath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || "(top level)";
}

function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => {
    let msg = i.message;
    if (i.code === "unrecognized_keys")
      msg = `unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.join(", ")}`;
    if (i.code === "invalid_union" && "discriminator" in i) msg = `${msg}`;
    return `${formatIssuePath(i.path)}: ${msg}`;
  });
}

/** Parses and validates configuration text; `file` is used for relative paths and messages. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const where = e.linePos?.[0] ? `line ${e.linePos[0].line}` : "YAML";
    throw new ConfigError(file, [`${where}: ${e.message.split("\n")[0]}`]);
  }
  let raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(file, ["(top level): the file must be a YAML mapping"]);
  }
  try {
    raw = resolveReferences(raw, "", env);
  } catch (err) {
    if (err instanceof UnresolvedReferenceError) throw new ConfigError(file, [err.message]);
    throw err;
  }
  const base = dirname(resolve(file));
  raw = resolvePaths(raw, base);
  const obj = raw as Record<string, unknown>;
  // top-level `checks` are the default of every source that has none of its own
  if (obj.checks && Array.isArray(obj.sources)) {
    obj.sources = obj.sources.map((s) =>
      s && typeof s === "object" && !("checks" in s) ? { ...s, checks: obj.checks } : s,
    );
  }
  const parsed = configSchema.safeParse(obj);
  if (!parsed.success) throw new ConfigError(file, describeIssues(parsed.error));
  // defaults (./reports, ./reports/history.csv, …) follow the same rule as written paths: the
  // config file's folder, never the working directory, so every caller shares one history
  const data = resolvePaths(parsed.data, base) as typeof parsed.data;
  return deepFreeze({ ...data, file: resolve(file) });
}

/** Reads and validates a configuration file. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [code === "ENOENT" ? "file does not exist" : `cannot read: ${code ?? err}`]);
  }
  return parseConfig(text, file, env);
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
