/**
 * Physical restores keep to their sandbox, against real pg_basebackup output of a cluster with
 * a tablespace whose directory exists on the host (fixtures/build-basebackups.sh, tablespace/):
 * the genuine tar and plain backups (and a pgBackRest backup of the same cluster) restore and
 * pass with the tablespace inside the sandbox;
 * hostile twins whose postgresql.conf names data_directory, include_if_exists, hba_file and a
 * library, whose pg_wal is a link to a host directory, or whose tablespace link names the
 * production directory, reach nothing on the host.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backup, RunResult } from "../src/model.js";
import { LocalRuntime } from "../src/runtimes/local/local-runtime.js";
import { withClient } from "../src/runtimes/sql.js";
import { pgbackrestSourceSchema } from "../src/sources/pgbackrest/pgbackrest-config.js";
import { PgbackrestSource } from "../src/sources/pgbackrest/pgbackrest-source.js";
import { createSource } from "../src/sources/registry.js";
import { VerifierError } from "../src/util/errors.js";
import { silentLogger } from "../src/util/log.js";
import {
  BASEBACKUPS,
  buildBasebackups,
  type DrillOutcome,
  drill,
  leftovers,
  listFixture,
  RUN_LABEL,
  sourceConfig,
  type TablespaceExpected,
  tablespaceExpected,
  treeDigest,
} from "./physical-fixture.js";
import { attest, workspace } from "./support/cli.js";
import { leftovers as runtimeLeftovers, sandboxYaml, selectedRuntimes } from "./support/runtimes.js";

let ts: TablespaceExpected;
let hostBefore: Record<string, Record<string, string>>;
const dirs: string[] = [];

/** The host directories the hostile twins name: none may change. */
const HOST_DIRS = ["prod-ts", "other-cluster", "host-wal"] as const;

beforeAll(() => {
  buildBasebackups();
  ts = tablespaceExpected();
  hostBefore = Object.fromEntries(HOST_DIRS.map((d) => [d, treeDigest(join(ts.host, d))]));
});

afterAll(() => {
  // byte-identical after every drill of this file, whatever each one ended with
  for (const d of HOST_DIRS) expect(treeDigest(join(ts.host, d)), `${d} on the host`).toEqual(hostBefore[d]);
  expect(existsSync(join(ts.host, "other-cluster", "postmaster.pid"))).toBe(false);
  expect(readdirSync(join(ts.host, "host-wal"))).toEqual([]);
  expect(leftovers()).toEqual({ dirs: [], processes: [] });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const pick = (backups: Backup[], id: string) => {
  const b = backups.find((x) => x.id === id);
  if (!b) throw new Error(`no backup ${id} in ${backups.map((x) => x.id).join(", ")}`);
  return b;
};

/** What the restored cluster says about where it lives and what it loaded. */
interface Inside {
  settings: Record<string, string>;
  tablespace: string;
  rows: string;
  pgWalIsLink: boolean;
}

/** Drills backup `id` of a tablespace fixture folder to the end of the archive. */
async function drillTs(folder: "base" | "hostile", id: string): Promise<DrillOutcome & { inside?: Inside }> {
  const cfg = sourceConfig(`tablespace/${folder}`, "tablespace/wal");
  const { backups } = await listFixture(cfg);
  let inside: Inside | undefined;
  const r = await drill(
    cfg,
    { backup: pick(backups, id), target: { kind: "latest" }, reason: "x" },
    async (sb) => {
      inside = await withClient(sb, "postgres", async (c) => {
        const settings = Object.fromEntries(
          (
            await c.query<{ name: string; setting: string }>(
              `select name, setting from pg_catalog.pg_settings where name in
              ('data_directory', 'config_file', 'hba_file', 'ident_file', 'shared_preload_libraries',
               'unix_socket_directories', 'max_connections', 'max_locks_per_transaction')`,
            )
          ).rows.map((x) => [x.name, x.setting]),
        );
        const tablespace = (
          await c.query<{ l: string }>(
            "select pg_catalog.pg_tablespace_location(oid) as l from pg_catalog.pg_tablespace where spcname = 'ts1'",
          )
        ).rows[0]!.l;
        const rows = (
          await c.query<{ m: string }>(
            "select pg_catalog.md5(pg_catalog.string_agg(id || ':' || v, ',' order by id)) as m from public.ts_rows",
          )
        ).rows[0]!.m;
        const link = (
          await c.query<{ t: string }>("select (pg_catalog.pg_stat_file('pg_wal')).isdir::text as t")
        ).rows[0]!.t;
        return { settings, tablespace, rows, pgWalIsLink: link !== "true" };
      });
    },
  );
  return { ...r, ...(inside ? { inside } : {}) };
}

/** The assertions every drill that should pass shares. */
function expectRestoredInside(r: DrillOutcome & { inside?: Inside }): Inside {
  expect(r.error, r.error?.message).toBeUndefined();
  expect(r.markers).toEqual(ts.markers);
  const inside = r.inside!;
  const data = inside.settings.data_directory!;
  expect(data).toMatch(/attest-sandboxes\//);
  expect(inside.tablespace).toBe(`${data}/attest_tablespaces/${ts.tablespace_oid}`);
  expect(inside.rows).toBe(ts.rows_md5);
  expect(inside.settings.config_file).toBe(`${data}/postgresql.conf`);
  expect(inside.settings.hba_file).toBe(`${data}/attest_hba.conf`);
  expect(inside.settings.ident_file).toBe(`${data}/attest_ident.conf`);
  expect(inside.settings.shared_preload_libraries).toBe("");
  expect(inside.pgWalIsLink).toBe(false);
  // carried over from the primary, by name: it ran with more than the defaults
  expect(Number(inside.settings.max_connections)).toBeGreaterThanOrEqual(120);
  expect(Number(inside.settings.max_locks_per_transaction)).toBeGreaterThanOrEqual(80);
  return inside;
}

describe("genuine tablespace backups restore inside the sandbox", () => {
  it("-Ft: 16384.tar extracted into the sandbox, tablespace_map rewritten", async () => {
    const r = await drillTs("base", "ts-tar");
    expectRestoredInside(r);
    const notes = r.outcome!.notes.join("\n");
    expect(notes).toContain(
      `tablespace ${ts.tablespace_oid} extracted into attest_tablespaces/${ts.tablespace_oid}`,
    );
    expect(notes).toMatch(
      new RegExp(`tablespace_map rewritten: ${ts.tablespace_oid} -> attest_tablespaces/`),
    );
    expect(notes).toContain("pg_verifybackup: every file matches the manifest");
  });

  it("-Fp with the tablespace copied inside the backup: moved into place, verified", async () => {
    const r = await drillTs("base", "ts-plain");
    expectRestoredInside(r);
    const notes = r.outcome!.notes.join("\n");
    expect(notes).toContain(
      `tablespace ${ts.tablespace_oid} found at tblspc/ts1 in the restored copy: moved to attest_tablespaces/`,
    );
    expect(notes).toContain("pg_verifybackup: every file matches the manifest");
  });
});

describe("pgBackRest restores of the same cluster", () => {
  it("put the tablespace inside the sandbox, not at its original path", async () => {
    const cfg = pgbackrestSourceSchema.parse({
      name: "ts-pgbackrest",
      type: "pgbackrest",
      stanza: "ts",
      config_file: join(BASEBACKUPS, "tablespace", "pgbackrest", "pgbackrest.conf"),
      verify: false,
    });
    const backups = await new PgbackrestSource(cfg).list({ logger: silentLogger });
    expect(backups).toHaveLength(1);
    const plan = { backup: backups[0]!, target: { kind: "latest" as const }, reason: "x" };
    const restorer = createSource(cfg).restorer(plan.backup);
    const runtime = new LocalRuntime({ user: "postgres", logger: silentLogger });
    await using sandbox = await runtime.provision({
      pgMajor: 15,
      allowNewer: false,
      labels: { run: RUN_LABEL, source: cfg.name, backup: plan.backup.id },
      mode: restorer.sandboxMode,
      inputs: (restorer.inputs?.(plan) ?? []).map((hostPath) => ({ hostPath })),
    });
    const outcome = await restorer.restore(sandbox, {
      plan,
      logger: silentLogger,
      timeoutMs: 180_000,
      progress: () => {},
    });
    expect(outcome.notes.join("\n")).toContain(
      "tablespaces restored inside the sandbox (--tablespace-map-all)",
    );
    const row = await withClient(sandbox, "postgres", async (c) => {
      const r = await c.query<{ l: string; m: string }>(
        `select pg_catalog.pg_tablespace_location(t.oid) as l,
                (select pg_catalog.md5(pg_catalog.string_agg(id || ':' || v, ',' order by id)) from public.ts_rows) as m
           from pg_catalog.pg_tablespace t where spcname = 'ts1'`,
      );
      return r.rows[0]!;
    });
    expect(row).toEqual({ l: `${sandbox.dataDir}/attest_tablespaces/${ts.tablespace_oid}`, m: ts.rows_md5 });
  });
});

describe("hostile twins reach nothing on the host", () => {
  for (const id of ["h-conf-tar", "h-conf-plain"]) {
    it(`${id}: data_directory, include_if_exists, hba_file, a library in postgresql.conf have no effect`, async () => {
      const r = await drillTs("hostile", id);
      const inside = expectRestoredInside(r);
      expect(inside.settings.unix_socket_directories).not.toContain(ts.host);
      const text = JSON.stringify(r).toLowerCase();
      expect(text).not.toContain(ts.canary.toLowerCase());
      expect(r.outcome!.notes.join("\n")).toContain("set aside");
    });
  }

  for (const id of ["h-pgwal-tar", "h-pgwal-plain"]) {
    it(`${id}: a pg_wal link to a host directory becomes a directory inside the sandbox`, async () => {
      const r = await drillTs("hostile", id);
      expectRestoredInside(r);
      expect(r.outcome!.notes.join("\n")).toContain(
        `pg_wal was a link to ${join(ts.host, "host-wal")}: replaced by an empty directory inside the sandbox`,
      );
      expect(readdirSync(join(ts.host, "host-wal"))).toEqual([]);
    });
  }

  it("h-preload-tar: a database's session_preload_libraries is not loaded into the restore's own sessions", async () => {
    const cfg = sourceConfig("tablespace/hostile", "tablespace/wal");
    const { backups } = await listFixture(cfg);
    // to the backup's own end: the archive goes on to the RESET the fixture made afterwards
    const plan = {
      backup: pick(backups, "h-preload-tar"),
      target: { kind: "immediate" as const },
      reason: "x",
    };
    const restorer = createSource(cfg).restorer(plan.backup);
    const runtime = new LocalRuntime({ user: "postgres", logger: silentLogger });
    await using sandbox = await runtime.provision({
      pgMajor: 15,
      allowNewer: false,
      labels: { run: RUN_LABEL, source: cfg.name, backup: plan.backup.id },
      mode: restorer.sandboxMode,
      inputs: (restorer.inputs?.(plan) ?? []).map((hostPath) => ({ hostPath })),
    });
    // recovery is watched and access set up through psql sessions in the database that names the library
    const outcome = await restorer.restore(sandbox, {
      plan,
      logger: silentLogger,
      timeoutMs: 180_000,
      progress: () => {},
    });
    expect(outcome.databases).toContain("postgres");
    // the payload is there: a session that does not override it fails to load the library
    const plain = await sandbox.exec("psql", ["-X", "-At", "-d", "postgres", "-c", "select 1"], {
      timeoutMs: 30_000,
      allowFailure: true,
    });
    expect(plain.code).not.toBe(0);
    expect(plain.stderrTail).toContain(join(ts.host, "host-wal", "evil"));
  });

  it("h-prodts-plain: a tablespace link to the production directory is refused (error, not fail)", async () => {
    const r = await drillTs("hostile", "h-prodts-plain");
    expect(r.error).toBeInstanceOf(VerifierError);
    expect(r.error!.message).toContain(`${ts.tablespace_oid} -> ${ts.tablespace_dir}`);
    expect(r.error!.message).toContain("Attest reads no path a backup names");
  });
});

for (const runtime of selectedRuntimes()) {
  describe(`attest audit of the tablespace backups and their hostile twins (${runtime})`, () => {
    it("passes them, the host is untouched, and the canary is nowhere in the JSON, the history or the reports", async () => {
      const stall = "wal_stall: { warning: 36500d, critical: 73000d }";
      const source = (name: string, folder: string, id: string) => `  - name: ${name}
    type: basebackup
    path: ${BASEBACKUPS}/tablespace/${folder}
    wal_archive: ${BASEBACKUPS}/tablespace/wal
    ${stall}
    select: ${id}
`;
      const ws = workspace(
        (dir) => `${sandboxYaml(runtime)}
policies: { rpo: 36500d }
sources:
${source("ts-tar", "base", "ts-tar")}${source("ts-plain", "base", "ts-plain")}${source("conf-tar", "hostile", "h-conf-tar")}${source("pgwal-plain", "hostile", "h-pgwal-plain")}history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
`,
      );
      dirs.push(ws.dir);
      const r = await attest(["audit", "--config", ws.config, "--json", "--no-mail"]);
      expect(r.stdout, r.stderr.slice(-2000)).toMatch(/^\{/);
      const doc = JSON.parse(r.stdout) as RunResult;
      expect(runtimeLeftovers(runtime, doc.run.id), "sandboxes left").toEqual([]);
      for (const d of doc.drills) expect(d.verdict, `${d.source}: ${d.reason}`).toBe("pass");
      expect(doc.drills).toHaveLength(4);
      const everything = [
        r.stdout,
        r.stderr,
        readFileSync(join(ws.dir, "reports", "history.csv"), "utf8"),
        ...readdirSync(join(ws.dir, "reports"))
          .filter((n) => /\.(json|csv|txt)$/.test(n))
          .map((n) => readFileSync(join(ws.dir, "reports", n), "utf8")),
      ]
        .join("\n")
        .toLowerCase();
      expect(everything).not.toContain(ts.canary.toLowerCase());
      for (const d of HOST_DIRS)
        expect(treeDigest(join(ts.host, d)), `${d} on the host`).toEqual(hostBefore[d]);
    });
  });
}
