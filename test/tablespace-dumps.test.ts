/**
 * A logical dump of a database with a table in a non-default tablespace: real pg_dump output of
 * a real cluster, drilled through the CLI. The tablespace is made inside the sandbox; the host
 * path the source used (and its globals name) is never touched.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import { lookupUser } from "../src/util/os-user.js";
import { attest, workspace } from "./support/cli.js";

const BIN = "/usr/lib/postgresql/15/bin";
const root = mkdtempSync(join(tmpdir(), "attest-tblspc-"));
const dumps = join(root, "dumps");
const hostSpace = join(root, "fastdisk");
let serverDir = "";

/** Runs a PostgreSQL program as the postgres account. */
function asPostgres(program: string, args: string[]): string {
  return execFileSync("runuser", ["-u", "postgres", "--", join(BIN, program), ...args], { encoding: "utf8" });
}

beforeAll(() => {
  const pg = lookupUser("postgres")!;
  chmodSync(root, 0o755);
  serverDir = join(root, "server");
  for (const d of [serverDir, hostSpace, dumps]) {
    mkdirSync(d, { recursive: true });
    chownSync(d, pg.uid, pg.gid);
  }
  asPostgres("initdb", ["-D", join(serverDir, "data"), "-U", "postgres", "-A", "trust", "--no-sync"]);
  asPostgres("pg_ctl", [
    "-D",
    join(serverDir, "data"),
    "-o",
    `-c listen_addresses= -c unix_socket_directories=${serverDir} -c fsync=off`,
    "-l",
    join(serverDir, "log"),
    "-w",
    "start",
  ]);
  const psql = (db: string, sql: string) =>
    asPostgres("psql", ["-X", "-q", "-h", serverDir, "-d", db, "-c", sql]);
  psql("postgres", `CREATE TABLESPACE fastdisk LOCATION '${hostSpace}'`);
  psql("postgres", "CREATE DATABASE shop");
  psql("shop", "CREATE TABLE hot (id int PRIMARY KEY, v text) TABLESPACE fastdisk");
  psql("shop", "INSERT INTO hot SELECT g, md5(g::text) FROM generate_series(1, 1000) g");
  psql("shop", "CREATE INDEX hot_v ON hot (v) TABLESPACE fastdisk");
  for (const [name, format] of [
    ["shop_20261201T0300.dump", "c"],
    ["shop_20261201T0300.sql", "p"],
  ] as const)
    asPostgres("pg_dump", ["-h", serverDir, "-d", "shop", `-F${format}`, "-f", join(dumps, name)]);
  asPostgres("pg_dumpall", ["-h", serverDir, "--globals-only", "-f", join(dumps, "globals.sql")]);
  asPostgres("pg_ctl", ["-D", join(serverDir, "data"), "-m", "immediate", "-w", "stop"]);
  // what the drill must never touch: the source's tablespace directory, now left as it is
  chmodSync(dumps, 0o755);
}, 120_000);

afterAll(() => {
  try {
    asPostgres("pg_ctl", ["-D", join(serverDir, "data"), "-m", "immediate", "-w", "stop"]);
  } catch {
    // already stopped
  }
  rmSync(root, { recursive: true, force: true });
});

describe("a dump with a table in a non-default tablespace", () => {
  it("restores with the tablespace made inside the sandbox, custom and plain, with the globals file", async () => {
    const before = readdirSync(hostSpace, { recursive: true }).sort();
    const w = workspace(
      (dir) =>
        `sources: [{ name: shop, type: dump-dir, path: ${dumps}, globals: ${join(dumps, "globals.sql")}, select: all }]\n` +
        `history: { csv: ${dir}/reports/history.csv }\nreports: { dir: ${dir}/reports }\n`,
    );
    const r = await attest(["audit", "--config", w.config, "--json", "--no-mail"]);
    const doc = JSON.parse(r.stdout) as RunResult;
    expect(doc.drills.map((d) => [d.backup.format, d.verdict, d.reason]).sort()).toEqual([
      ["custom", "pass", expect.any(String)],
      ["plain", "pass", expect.any(String)],
    ]);
    for (const d of doc.drills)
      expect(d.notes.join(" ")).toMatch(/created tablespace\(s\) fastdisk inside the sandbox/);
    // the source's tablespace directory on the host is as it was
    expect(readdirSync(hostSpace, { recursive: true }).sort()).toEqual(before);
    rmSync(w.dir, { recursive: true, force: true });
  });
});
