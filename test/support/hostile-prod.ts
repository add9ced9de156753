/**
 * The "production" server the hostile corpus aims at: a real PostgreSQL 15 on 127.0.0.1 at
 * the port baked into the payloads and on a Unix socket in a fixed host directory, trusting
 * every connection (the worst case), with a table `pwned` anyone may write, logging every
 * connection. Runs as the postgres OS user, stopped by pid.
 */
import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

const PGBIN = "/usr/lib/postgresql/15/bin";

/** A running production server. */
export interface ProdServer {
  port: number;
  /** Pid of its postmaster. */
  pid: number;
  /** Rows anything wrote into `pwned`. */
  pwned(): Promise<string[]>;
  /** Connections through its Unix socket since the last call (the test itself only uses TCP). */
  socketConnections(): string[];
  /** Whether the postmaster still runs. */
  alive(): boolean;
  stop(): Promise<void>;
}

function uidOf(user: string): { uid: number; gid: number } {
  const [uid, gid] = [
    execFileSync("id", ["-u", user], { encoding: "utf8" }),
    execFileSync("id", ["-g", user], { encoding: "utf8" }),
  ].map((s) => Number(s.trim()));
  return { uid: uid!, gid: gid! };
}

function alivePid(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts the production server on `port`; throws with the log's tail if it cannot. */
export async function startProd(port: number, socketDir: string): Promise<ProdServer> {
  const dir = mkdtempSync(join(tmpdir(), "attest-hostile-prod-"));
  const { uid, gid } = uidOf("postgres");
  chownSync(dir, uid, gid);
  rmSync(socketDir, { recursive: true, force: true });
  mkdirSync(socketDir, { mode: 0o755 });
  chownSync(socketDir, uid, gid);
  const logFile = join(dir, "server.log");
  const data = join(dir, "data");
  const asPg = ([program, ...args]: string[]) =>
    execFileSync(program!, args, {
      cwd: dir,
      uid,
      gid,
      env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
      stdio: ["ignore", "pipe", "pipe"],
    });
  try {
    asPg([
      `${PGBIN}/initdb`,
      "-D",
      data,
      "-A",
      "trust",
      "-U",
      "postgres",
      "-E",
      "UTF8",
      "--locale=C.UTF-8",
      "-N",
    ]);
    asPg([
      `${PGBIN}/pg_ctl`,
      "-D",
      data,
      "-l",
      logFile,
      "-w",
      "-t",
      "30",
      "-o",
      `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${socketDir} -c unix_socket_permissions=0777 -c fsync=off -c log_connections=on`,
      "start",
    ]);
  } catch (err) {
    const log = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`production server did not start on 127.0.0.1:${port}: ${log.slice(-500)}`, {
      cause: err,
    });
  }
  const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
  let reported = 0;
  const query = async <T extends pg.QueryResultRow>(database: string, sql: string) => {
    const c = new pg.Client({ host: "127.0.0.1", port, user: "postgres", database });
    await c.connect();
    try {
      return (await c.query<T>(sql)).rows;
    } finally {
      await c.end();
    }
  };
  await query("postgres", "CREATE DATABASE prod");
  await query("prod", "CREATE TABLE public.pwned (tag text); GRANT ALL ON public.pwned TO PUBLIC");
  return {
    port,
    pid,
    pwned: async () =>
      (await query<{ tag: string }>("prod", "SELECT tag FROM public.pwned")).map((r) => r.tag),
    socketConnections: () => {
      const all = readFileSync(logFile, "utf8")
        .split("\n")
        .filter((l) => /connection received: host=\[local\]/.test(l));
      const fresh = all.slice(reported);
      reported = all.length;
      return fresh;
    },
    alive: () => alivePid(pid),
    stop: async () => {
      // immediate shutdown by signal; the children follow the postmaster
      if (alivePid(pid)) process.kill(pid, "SIGQUIT");
      for (let i = 0; i < 200 && alivePid(pid); i++) await new Promise((r) => setTimeout(r, 50));
      if (alivePid(pid)) process.kill(pid, "SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      rmSync(socketDir, { recursive: true, force: true });
    },
  };
}
