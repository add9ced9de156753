/** Finding PostgreSQL server binaries on the host, one directory per major. */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { runProcess } from "../../util/process.js";

/** Binaries of one major. */
export interface PgInstall {
  major: number;
  binDir: string;
}

const SERVER_TOOLS = ["initdb", "postgres", "pg_ctl"] as const;

function complete(binDir: string): boolean {
  return SERVER_TOOLS.every((t) => existsSync(join(binDir, t)));
}

/** Reads the major of the `postgres` binary in `binDir`. */
export async function majorOf(binDir: string): Promise<number | undefined> {
  try {
    const r = await runProcess(join(binDir, "postgres"), ["--version"], { timeoutMs: 10_000 });
    const m = /(\d+)(?:\.\d+)?/.exec(r.stdout.replace(/^[^\d]*/, ""));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Discovers installs, in order: the configured bin dir; Debian/Ubuntu's
 * /usr/lib/postgresql/N/bin; RHEL's /usr/pgsql-N/bin; `pg_config --bindir`.
 */
export async function discoverInstalls(configuredBinDir?: string): Promise<PgInstall[]> {
  const found = new Map<number, PgInstall>();
  const consider = async (binDir: string) => {
    if (!complete(binDir)) return;
    const major = await majorOf(binDir);
    if (major !== undefined && !found.has(major)) found.set(major, { major, binDir });
  };
  if (configuredBinDir) {
    await consider(configuredBinDir);
    return [...found.values()];
  }
  for (const root of ["/usr/lib/postgresql"]) {
    if (!existsSync(root)) continue;
    for (const v of readdirSync(root)) await consider(join(root, v, "bin"));
  }
  if (existsSync("/usr")) {
    for (const d of readdirSync("/usr")) if (/^pgsql-\d+$/.test(d)) await consider(join("/usr", d, "bin"));
  }
  try {
    const r = await runProcess("pg_config", ["--bindir"], { timeoutMs: 10_000 });
    await consider(r.stdout.trim());
  } catch {
    // no pg_config on PATH: the other strategies decide
  }
  return [...found.values()].sort((a, b) => a.major - b.major);
}
