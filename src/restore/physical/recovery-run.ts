/**
 * Starting a restored data directory and waiting until recovery is over: archive recovery
 * to a target (recovery.signal + restore_command) or crash recovery. Shared by the physical
 * and snapshot restorers.
 */
import type { Reached, RecoveryTarget } from "../../model.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { formatBytes, formatDuration } from "../../util/duration.js";
import { BackupDefectError, describeError, VerifierError } from "../../util/errors.js";
import { lastLines } from "../../util/process.js";
import { retryUntil } from "../../util/retry.js";
import { parseHistory } from "../../wal/timeline-history.js";
import { formatLsn, parseLsn } from "../../wal/wal-names.js";
import { catalogShadowsSql, parseShadowLines, refuseShadows } from "../catalog-guard.js";
import type { RestoreContext, RestoreOutcome } from "../restorer.js";
import type { ContainOptions } from "./contain-data-dir.js";
import { prepareDataDir } from "./prepare-data-dir.js";
import { describeTarget, recoveryStartSettings } from "./recovery-config.js";
import { classifyRecoveryFailure, type RecoveryLogFacts, readRecoveryLog } from "./recovery-log.js";
import { sandboxSh, socketDirOf, socketSql } from "./sandbox-shell.js";

/** How to run recovery. */
export interface RecoveryPlan {
  /** Archive recovery to this target; undefined = crash recovery to the end of pg_wal. */
  target?: RecoveryTarget;
  /** The WAL archive as the sandbox sees it (needed for archive recovery). */
  archiveDir?: string;
  /** Role of the restored cluster to connect as over the socket before access is set up. */
  superuser: string;
  /** Where replay starts (the backup's start), for progress and the replay rate. */
  startLsn?: string;
  /**
   * Called once the server left recovery, before Attest sends it any other SQL: the last
   * restore_command has run, so whatever served it (a store relay, keys) goes now.
   */
  onRecovered?: () => Promise<void>;
  /** Tells the failure reason more about where WAL is missing, given what the log says. */
  explainStop?: (facts: RecoveryLogFacts) => string | undefined;
  /** How the data directory was filled, for keeping its links inside the sandbox. */
  contain?: ContainOptions;
}

/** What recovery ended with. */
export interface RecoveryResult {
  reached: Reached;
  recoveryMs: number;
  databases: string[];
  notes: string[];
  /** Whether the cluster has data checksums on. */
  dataChecksums: boolean;
  /** The timeline the server runs on now (after promotion a new one, read from pg_control). */
  currentTimeline: number;
  /** Why recovery stopped, from the new timeline's history ("before transaction 812 at …"). */
  stopReason?: string;
}

/** What a restore that ended in `result` reports: its reach and databases, `notes` then recovery's own. */
export function recoveryOutcome(result: RecoveryResult, notes: readonly string[]): RestoreOutcome {
  return {
    databases: result.databases,
    reached: result.reached,
    recoveryMs: result.recoveryMs,
    notes: [
      ...notes,
      ...result.notes,
      ...(result.dataChecksums ? ["data checksums are on"] : ["data checksums are off"]),
    ],
  };
}

/** Starts the server and waits until it is promoted (or crash recovery is over). */
export async function runRecovery(
  sandbox: Sandbox,
  ctx: RestoreContext,
  plan: RecoveryPlan,
): Promise<RecoveryResult> {
  const notes: string[] = [];
  await prepareDataDir(sandbox, plan, notes);
  // with store access in the sandbox, no SQL before the store is closed: an output function the
  // backup rewired to its own library would run on the first result row (S3-11)
  const watchOnly = plan.onRecovered !== undefined;
  const settings = recoveryStartSettings(!watchOnly);
  const startedAt = Date.now();
  const deadline = startedAt + ctx.timeoutMs;
  const logFacts = async () => readRecoveryLog(await sandbox.logTail(400));
  const fail = async (fallback?: string): Promise<never> => {
    const facts = await logFacts();
    const judged = classifyRecoveryFailure(facts.fatal ?? fallback);
    const where = reachedWords(facts);
    const extra = judged.defect ? plan.explainStop?.(facts) : undefined;
    const target = plan.target ? ` (target: ${describeTarget(plan.target)})` : " (crash recovery)";
    // `select: all` replays to the next backup's start: not getting there breaks the backup chain
    const chain =
      judged.defect && plan.target?.kind === "lsn" && plan.target.nextBackup
        ? `the WAL chain to the next backup (${plan.target.nextBackup}) is broken: `
        : "";
    const msg = `${chain}${judged.what}${target}: ${facts.fatal ?? fallback ?? "no message"}${where ? `; last reachable point: ${where}` : judged.defect ? "; nothing could be replayed" : ""}${extra ? `; ${extra}` : ""}`;
    throw judged.defect
      ? new BackupDefectError(msg)
      : new VerifierError(`${msg} | ${lastLines(await sandbox.logTail(20), 4)}`);
  };

  try {
    await sandbox.start({
      settings,
      wait: "running",
      timeoutMs: Math.max(10_000, Math.min(30_000, deadline - Date.now())),
      signal: ctx.signal,
    });
  } catch (err) {
    await fail(describeError(err));
  }

  let socketDir: string | undefined;
  let lastProgress = "";
  let notRunning = 0;
  const startLsn = plan.startLsn ? parseLsn(plan.startLsn) : undefined;
  type Poll = { kind: "done" } | { kind: "died" } | { kind: "error"; message: string };
  const poll = await retryUntil<Poll>(
    async () => {
      // postmaster.pid may exist but be empty for a moment after start: dead only when seen so thrice
      if (!(await sandbox.isRunning())) return ++notRunning >= 3 ? { kind: "died" } : undefined;
      notRunning = 0;
      if (watchOnly) {
        if (await promotedWithoutSql(sandbox, plan.target !== undefined)) return { kind: "done" };
        const facts = await logFacts();
        const text = `replaying WAL (watched without SQL while the store is reachable): ${
          facts.lastRestored ? `restored ${facts.lastRestored}` : "starting"
        }, ${formatDuration(Date.now() - startedAt)}`;
        if (text !== lastProgress) {
          lastProgress = text;
          ctx.progress(text);
        }
        return undefined;
      }
      socketDir ??= await socketDirOf(sandbox);
      if (!socketDir) return undefined;
      const sql = socketSql(sandbox, socketDir, plan.superuser);
      let row: string;
      try {
        // zero-argument built-ins and the LSN in its own output form: nothing the backup's catalog
        // adds (an overload, a cast pg_lsn → text) can be picked instead
        row = await sql.query("select pg_catalog.pg_is_in_recovery(), pg_catalog.pg_last_wal_replay_lsn()", {
          timeoutMs: 15_000,
        });
      } catch (err) {
        // not accepting connections before consistency: say which segment replay is at
        const facts = await logFacts();
        const text = facts.lastRestored
          ? `recovering: restored ${facts.lastRestored}`
          : "recovering: starting";
        if (text !== lastProgress) {
          lastProgress = text;
          ctx.progress(text);
        }
        if (/role ".*" does not exist/.test(describeError(err))) {
          return {
            kind: "error",
            message: `role "${plan.superuser}" does not exist in the restored cluster; set the source's superuser`,
          };
        }
        return undefined;
      }
      const [inRecovery, lsn] = row.split("|");
      if (inRecovery === "f") return { kind: "done" };
      if (lsn) {
        const replayed = startLsn !== undefined ? parseLsn(lsn) - startLsn : undefined;
        ctx.progress(
          `replaying WAL: ${lsn}${replayed !== undefined ? ` (${formatBytes(Number(replayed))} replayed)` : ""}`,
        );
      }
      return undefined;
    },
    {
      timeoutMs: Math.max(1000, deadline - Date.now()),
      intervalMs: watchOnly ? 500 : 200,
      what: "WAL replay to finish",
      signal: ctx.signal,
    },
  ).catch(async (err) => {
    if (ctx.signal?.aborted) throw err;
    const facts = await logFacts();
    throw new VerifierError(
      `${describeError(err)}; recovery was at ${reachedWords(facts) || facts.lastRestored || "its start"} when the time ran out`,
      { cause: err },
    );
  });
  if (poll.kind === "died") await fail();
  if (poll.kind === "error") throw new VerifierError(poll.message);
  const recoveryMs = Date.now() - startedAt;

  if (plan.onRecovered) {
    // promoted, no connection made yet: the store goes before the first one
    await plan.onRecovered();
    const early = (await sandbox.logTail(100_000)).split("\n").filter((l) => /connection received:/.test(l));
    notes.push(
      `recovery watched without SQL while the store was reachable (hot_standby off; ${early.length} connection(s) in the server log before the store was closed)`,
    );
    socketDir = await socketDirOf(sandbox);
    if (!socketDir) throw new VerifierError("the promoted server's postmaster.pid names no socket directory");
  }
  const sql = socketSql(sandbox, socketDir!, plan.superuser);
  // before any other query: a catalog that shadows built-ins ends the drill (catalog-guard.ts)
  let shadows: string;
  try {
    shadows = await sql.query(catalogShadowsSql(sandbox.pgMajor));
  } catch (err) {
    if (/role ".*" does not exist/.test(describeError(err)))
      throw new VerifierError(
        `role "${plan.superuser}" does not exist in the restored cluster; set the source's superuser`,
        { cause: err },
      );
    throw err;
  }
  refuseShadows(parseShadowLines(shadows), "postgres");
  // every call with its built-in's exact argument types, values read in their output form
  const [lsnText = "", tsText = "", walfile = "", checksums = ""] = (
    await sql.query(
      `select pg_catalog.pg_last_wal_replay_lsn(),
        pg_catalog.to_char(pg_catalog.timezone('UTC'::pg_catalog.text, pg_catalog.pg_last_xact_replay_timestamp()),
          'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'::pg_catalog.text),
        pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()),
        pg_catalog.current_setting('data_checksums'::pg_catalog.text)`,
    )
  ).split("|");
  // database names hex-encoded, one a line: a name may hold a newline or a `|`
  const dbs = (
    await sql.query(
      `select pg_catalog.encode(pg_catalog.convert_to(datname::pg_catalog.text, 'UTF8'::pg_catalog.name), 'hex'::pg_catalog.text)
         from pg_catalog.pg_database where not datistemplate and datallowconn order by datname`,
    )
  )
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((h) => Buffer.from(h.trim(), "hex").toString("utf8"));
  const info = { lsn: lsnText || null, ts: tsText || null, walfile, checksums, dbs };
  const currentTimeline = Number.parseInt(info.walfile.slice(0, 8), 16);
  const facts = await logFacts();
  const reached: Reached = {};
  let stopReason: string | undefined;
  if (plan.target && currentTimeline > 1) {
    // the new timeline's history names the parent that was replayed and why recovery stopped
    const text = await sql.query(
      `select pg_catalog.pg_read_file('pg_wal/${currentTimeline.toString(16).toUpperCase().padStart(8, "0")}.history'::pg_catalog.text, 0::pg_catalog.int8, 1048576::pg_catalog.int8, true)`,
    );
    const last = text ? parseHistory(text).at(-1) : undefined;
    if (last) {
      reached.timeline = last.tli;
      stopReason = last.reason;
    }
  }
  reached.timeline ??= facts.newTimeline ? facts.newTimeline - 1 : currentTimeline;
  // the promoted timeline is the sandbox's own, recorded apart from the one replay ended on
  if (plan.target) ctx.progress("promoted: waiting for the end-of-recovery checkpoint");
  const promoted = plan.target
    ? await promotedTimeline(sql, currentTimeline, Math.max(10_000, deadline - Date.now()))
    : undefined;
  if (promoted !== undefined) reached.promotedTimeline = promoted;
  const lsn = info.lsn ?? facts.redoDoneAt;
  if (lsn) reached.lsn = lsn;
  const ts = info.ts ?? facts.lastTransactionAt;
  if (ts) reached.timestamp = new Date(ts).toISOString();

  await setUpAccess(sandbox, sql, notes);

  if (startLsn !== undefined && reached.lsn) {
    const bytes = Number(parseLsn(reached.lsn) - startLsn);
    if (bytes > 0) {
      notes.push(
        `replayed ${formatBytes(bytes)} of WAL (${formatLsn(startLsn)} → ${reached.lsn}) in ${formatDuration(recoveryMs)}` +
          ` (${formatBytes(Math.round((bytes * 1000) / Math.max(1, recoveryMs)))}/s)`,
      );
    }
  }
  if (plan.target)
    notes.push(
      `${stopReason ? `recovery stopped: ${stopReason}; ` : ""}replay ended on timeline ${reached.timeline}` +
        `${reached.lsn ? ` at ${reached.lsn}` : ""}` +
        (promoted !== undefined && promoted !== reached.timeline
          ? `; the sandbox was then promoted to timeline ${promoted} (its own, per pg_control)`
          : ""),
    );
  else
    notes.push(
      `crash recovery${facts.redoDoneAt ? ` replayed up to ${facts.redoDoneAt}` : " found nothing to replay"}`,
    );
  return {
    reached,
    recoveryMs,
    databases: info.dbs ?? [],
    notes,
    dataChecksums: info.checksums === "on",
    currentTimeline: promoted ?? currentTimeline,
    ...(stopReason ? { stopReason } : {}),
  };
}

/**
 * Whether the server left recovery, told without a connection: postmaster.pid's status line says
 * "ready" (with hot_standby off only after promotion) and the server removed recovery.signal.
 */
async function promotedWithoutSql(sandbox: Sandbox, archiveRecovery: boolean): Promise<boolean> {
  const r = await sandboxSh(
    sandbox,
    'cd "$1" || exit 0; sed -n 8p postmaster.pid 2>/dev/null; if [ -e recovery.signal ] || [ -L recovery.signal ]; then echo recovery.signal; fi',
    [sandbox.dataDir],
    { allowFailure: true, timeoutMs: 10_000 },
  );
  const lines = r.stdout.split("\n").map((l) => l.trim());
  return lines[0] === "ready" && !(archiveRecovery && lines.includes("recovery.signal"));
}

/**
 * The timeline the promoted server runs on, as its control file records it: a CHECKPOINT
 * first, because the end-of-recovery checkpoint runs in the background after promotion.
 */
async function promotedTimeline(
  sql: ReturnType<typeof socketSql>,
  fallback: number,
  timeoutMs: number,
): Promise<number> {
  await sql.query("CHECKPOINT", { timeoutMs });
  const tli = Number(await sql.query("select timeline_id from pg_catalog.pg_control_checkpoint()"));
  return Number.isInteger(tli) && tli > 0 ? tli : fallback;
}

/** Makes sure the sandbox's own login (postgres + its password) works. */
async function setUpAccess(
  sandbox: Sandbox,
  sql: ReturnType<typeof socketSql>,
  notes: string[],
): Promise<void> {
  const { user, password } = sandbox.connection;
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const ident = `"${user.replace(/"/g, '""')}"`;
  const existed =
    (await sql.query(
      `select count(*) from pg_catalog.pg_authid where rolname operator(pg_catalog.=) ${q(user)}::pg_catalog.name`,
    )) === "1";
  await sql.query(
    [
      "SET password_encryption = 'scram-sha-256';",
      existed ? "" : `CREATE ROLE ${ident} LOGIN SUPERUSER;`,
      `ALTER ROLE ${ident} WITH LOGIN SUPERUSER PASSWORD ${q(password)};`,
    ].join("\n"),
    { stdin: true },
  );
  notes.push(
    existed
      ? `role ${user} given the sandbox's password (Attest's own logins use it)`
      : `role ${user} did not exist in the backup; created for the drill's checks`,
  );
}

/** "0/2AFFF58 (last transaction 2026-…Z)" from the log facts. */
export function reachedWords(f: RecoveryLogFacts): string {
  const parts: string[] = [];
  if (f.redoDoneAt) parts.push(`redo done at ${f.redoDoneAt}`);
  else if (f.lastRestored) parts.push(`after ${f.lastRestored}`);
  if (f.lastTransactionAt) parts.push(`last transaction at ${f.lastTransactionAt}`);
  return parts.join(", ");
}
