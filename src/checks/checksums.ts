/**
 * Data checksums of a physical restore: failures the server met while the drill read the
 * data (pg_stat_database.checksum_failures), and pg_checksums --check over every page of the
 * stopped cluster. Both apply only when the cluster was initialised with checksums (-k).
 */
import { withClient } from "../runtimes/sql.js";
import { lastLines } from "../util/process.js";
import type { Check, CheckContext } from "./check.js";
import { result } from "./helpers.js";

const isPhysical = (ctx: CheckContext) =>
  ctx.plan.backup.family === "physical" || ctx.plan.backup.family === "snapshot";

const CHECKSUMS_OFF =
  "data checksums are off in this cluster (initdb without -k): page damage shows only in amcheck and the full read";

async function checksumsOn(ctx: CheckContext): Promise<boolean> {
  return withClient(
    ctx.sandbox,
    "postgres",
    async (c) =>
      (
        await c.query<{ v: string }>(
          "select pg_catalog.current_setting('data_checksums'::pg_catalog.text) as v",
        )
      ).rows[0]?.v === "on",
  );
}

/** Checksum failures counted by the server since it started (the drill's reads included). */
export const checksumFailuresCheck: Check = {
  name: "checksum_failures",
  enabled: isPhysical,
  async run(ctx) {
    if (!(await checksumsOn(ctx))) return result("checksum_failures", "skip", CHECKSUMS_OFF);
    const rows = await withClient(ctx.sandbox, "postgres", async (c) => {
      const r = await c.query<{ db: string; failures: string; last: string | null }>(
        // the statistics functions, not the pg_stat_database view (a view the backup can redefine)
        `select coalesce(d.datname::pg_catalog.text, '(shared objects)'::pg_catalog.text) as db,
                pg_catalog.pg_stat_get_db_checksum_failures(d.oid) as failures,
                pg_catalog.to_char(pg_catalog.pg_stat_get_db_checksum_last_failure(d.oid),
                  'YYYY-MM-DD HH24:MI:SS.USOF'::pg_catalog.text) as last
           from (select oid, datname from pg_catalog.pg_database
                 union all select 0::pg_catalog.oid, null::pg_catalog.name) d
          where pg_catalog.pg_stat_get_db_checksum_failures(d.oid) operator(pg_catalog.>) 0::pg_catalog.int8
          order by 1`,
      );
      return r.rows;
    });
    if (rows.length === 0)
      return result(
        "checksum_failures",
        "pass",
        "no data checksum failure while the drill read the restored data",
      );
    const detail = rows.map((r) => `${r.db}: ${r.failures}${r.last ? ` (last ${r.last})` : ""}`).join(", ");
    return result("checksum_failures", "fail", `data checksum failures: ${detail}`, { databases: rows });
  },
};

/** pg_checksums --check on the stopped sandbox, then the server is started again for later checks. */
export const pgChecksumsCheck: Check = {
  name: "pg_checksums",
  enabled: isPhysical,
  async run(ctx) {
    if (!(await checksumsOn(ctx))) return result("pg_checksums", "skip", CHECKSUMS_OFF);
    const { sandbox } = ctx;
    await sandbox.stop({ timeoutMs: Math.min(ctx.timeoutMs, 60_000) });
    let r: Awaited<ReturnType<typeof sandbox.exec>>;
    try {
      r = await sandbox.exec("pg_checksums", ["--check", "-D", sandbox.dataDir], {
        timeoutMs: ctx.timeoutMs,
        allowFailure: true,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
    } finally {
      // later checks expect a running server
      await sandbox.start({
        timeoutMs: Math.min(ctx.timeoutMs, 120_000),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
    }
    const field = (k: string) => new RegExp(`^${k}:\\s*(\\d+)`, "m").exec(r.stdout)?.[1];
    const files = field("Files scanned");
    const blocks = field("Blocks scanned");
    const bad = Number(field("Bad checksums") ?? "NaN");
    if (r.code === 0 && bad === 0) {
      return result(
        "pg_checksums",
        "pass",
        `every page checksum is correct (${files} files, ${blocks} blocks)`,
        { files: Number(files), blocks: Number(blocks) },
      );
    }
    if (bad > 0) {
      const where = r.stderrTail
        .split("\n")
        .filter((l) => /checksum verification failed/.test(l))
        .slice(0, 3);
      return result(
        "pg_checksums",
        "fail",
        `${bad} page${bad > 1 ? "s" : ""} with a bad checksum: ${where.join(" | ") || lastLines(r.stderrTail, 2)}`,
        {
          bad,
          files: Number(files),
          blocks: Number(blocks),
          messages: where,
        },
      );
    }
    return result(
      "pg_checksums",
      "error",
      `pg_checksums exited with ${r.code}: ${lastLines(r.stderrTail, 2)}`,
    );
  },
};

/** The checksum checks, in the order they should run (the disruptive one last). */
export const CHECKSUM_CHECKS: readonly Check[] = [checksumFailuresCheck, pgChecksumsCheck];
