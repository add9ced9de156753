/** How Attest calls pgBackRest: which repository, no log files, no writes outside the sandbox. */
import { readFileSync } from "node:fs";
import { join } from "node:path";

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
 * The repository's path: `repo_path`, or repo<N>-path from the config file ([global] or the
 * stanza's section, the latter winning). Undefined when neither names it.
 */
export function repoPathOf(r: PgbackrestRepo): string | undefined {
  if (r.repo_path) return r.repo_path;
  if (!r.config_file) return undefined;
  let section = "";
  let found: string | undefined;
  const key = `repo${r.repo}-path`;
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

/** Where a backup set lives in a posix repository. */
export function backupSetPath(repoPath: string, stanza: string, label: string): string {
  return join(repoPath, "backup", stanza, label);
}
