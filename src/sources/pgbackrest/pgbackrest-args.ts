/** How Attest calls pgBackRest: which repository, no log files, no writes outside the sandbox. */
import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { StoreEndpoint } from "../../runtimes/local/store-relay.js";
import { VerifierError } from "../../util/errors.js";
import { registerSecret } from "../../util/redact.js";

/** The repository part of a pgbackrest source's configuration. */
export interface PgbackrestRepo {
  stanza: string;
  repo_path?: string | undefined;
  config_file?: string | undefined;
  repo: number;
}

/**
 * Options that name the repository: `--config` when a pgbackrest.conf is given (else
 * `--no-config`, so a host's /etc/pgbackrest.conf cannot redirect us), `--repo<N>-path`
 * when a path is given, `--repo` when not 1.
 */
export function repoArgs(r: PgbackrestRepo): string[] {
  const args = [r.config_file ? `--config=${r.config_file}` : "--no-config"];
  if (r.repo_path) args.push(`--repo${r.repo}-path=${r.repo_path}`);
  if (r.repo !== 1) args.push(`--repo=${r.repo}`);
  args.push(`--stanza=${r.stanza}`);
  return args;
}

/** pgBackRest writes no log file (the host's /var/log/pgbackrest is none of our business) and says errors on stderr. */
export const QUIET_ARGS = ["--log-level-file=off", "--log-level-console=off", "--log-level-stderr=error"];

/**
 * A repository option (`s3-endpoint` for repo<N>-s3-endpoint) as pgBackRest resolves it:
 * PGBACKREST_REPO<N>_… from the environment, else the config file's [global] or the stanza's
 * section (the last one in the file wins). Undefined when neither names it.
 */
export function repoOption(r: PgbackrestRepo, name: string): string | undefined {
  const key = `repo${r.repo}-${name}`;
  const env = process.env[`PGBACKREST_${key.toUpperCase().replace(/-/g, "_")}`];
  if (env !== undefined && env !== "") return env;
  if (!r.config_file) return undefined;
  let section = "";
  let found: string | undefined;
  for (const raw of readFileSync(r.config_file, "utf8").split("\n")) {
    const line = raw.trim();
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      continue;
    }
    const kv = /^([^=#\s]+)\s*=\s*(.*)$/.exec(line);
    if (!kv || kv[1] !== key) continue;
    if (section === "global" || section === r.stanza || section === `${r.stanza}:restore`)
      found = kv[2]!.trim();
  }
  return found;
}

/** Options whose values are the store's secrets (any repository number). */
const SECRET_OPTION = /^repo\d+-s3-(?:key-secret|token)$/;

/**
 * Registers the repository secrets of the config file (repo<N>-s3-key-secret, repo<N>-s3-token,
 * any section) and of PGBACKREST_REPO<N>_S3_KEY_SECRET/_TOKEN as secrets, so an error text that
 * carries one (a store echoing its request) is masked wherever Attest prints or stores it.
 */
export function registerRepoSecrets(r: PgbackrestRepo): void {
  for (const [k, v] of Object.entries(process.env))
    if (v && /^PGBACKREST_REPO\d+_S3_(?:KEY_SECRET|TOKEN)$/.test(k)) registerSecret(v);
  if (!r.config_file) return;
  let text: string;
  try {
    text = readFileSync(r.config_file, "utf8");
  } catch {
    return; // unreadable: pgBackRest will say so itself, and no secret of it can leak through us
  }
  for (const raw of text.split("\n")) {
    const kv = /^\s*([^=#\s]+)\s*=\s*(.*?)\s*$/.exec(raw);
    if (kv && SECRET_OPTION.test(kv[1]!) && kv[2]) registerSecret(kv[2]);
  }
}

/** The repository's type (repo<N>-type): posix unless it says otherwise. */
export function repoTypeOf(r: PgbackrestRepo): string {
  return r.repo_path ? "posix" : (repoOption(r, "type") ?? "posix");
}

/**
 * The path of a posix repository: `repo_path`, or repo<N>-path from the config file.
 * Undefined for an object-store repository, whose repo<N>-path is a key prefix, not a host path.
 */
export function repoPathOf(r: PgbackrestRepo): string | undefined {
  if (r.repo_path) return r.repo_path;
  if (repoTypeOf(r) !== "posix") return undefined;
  return repoOption(r, "path");
}

/** Where an S3 repository is reached, and the host files pgBackRest reads to trust it. */
export interface RepoStore {
  endpoint: StoreEndpoint;
  /** CA file or directory the TLS connection is verified with (read-only inside the sandbox). */
  trustFiles: string[];
  /** Other names pgBackRest connects to (a host-style bucket's `bucket.endpoint`). */
  names: string[];
  /** repo<N>-storage-ca-file, as configured. */
  caFile?: string;
  /** repo<N>-storage-ca-path, as configured. */
  caPath?: string;
}

/**
 * The store of an object-store repository (repo<N>-type=s3): the host it connects to
 * (repo<N>-storage-host, else the s3 endpoint) and port (repo<N>-storage-port, 443);
 * undefined for a posix repository. Other object stores are refused: Attest relays only S3.
 */
export function repoStoreOf(r: PgbackrestRepo): RepoStore | undefined {
  const type = repoTypeOf(r);
  if (type === "posix") return undefined;
  if (type !== "s3")
    throw new VerifierError(
      `pgbackrest repo${r.repo}-type=${type}: Attest reaches posix and s3 repositories only`,
    );
  // the pre-2.33 names are still accepted by pgBackRest 2.45
  const opt = (name: string, old: string) => repoOption(r, `storage-${name}`) ?? repoOption(r, `s3-${old}`);
  const host = opt("host", "host") ?? repoOption(r, "s3-endpoint");
  if (!host) throw new VerifierError(`pgbackrest repo${r.repo}-type=s3 without repo${r.repo}-s3-endpoint`);
  const port = Number(opt("port", "port") ?? 443);
  const caFile = opt("ca-file", "ca-file");
  const caPath = opt("ca-path", "ca-path");
  const trustFiles = [caFile, caPath].filter((p): p is string => Boolean(p && isAbsolute(p)));
  return {
    endpoint: { host: host.replace(/^\[(.*)\]$/, "$1"), port },
    trustFiles,
    names: [`${repoOption(r, "s3-bucket") ?? ""}.${repoOption(r, "s3-endpoint") ?? host}`],
    ...(caFile ? { caFile } : {}),
    ...(caPath ? { caPath } : {}),
  };
}

/** Where a backup set lives in a posix repository. */
export function backupSetPath(repoPath: string, stanza: string, label: string): string {
  return join(repoPath, "backup", stanza, label);
}
