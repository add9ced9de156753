/** Builds (once, cached) and describes the pg_basebackup fixture the physical tests use. */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Backup, DrillPlan } from "../src/model.js";
import type { RestoreOutcome } from "../src/restore/restorer.js";
import { LocalRuntime } from "../src/runtimes/local/local-runtime.js";
import type { Sandbox } from "../src/runtimes/runtime.js";
import { withClient } from "../src/runtimes/sql.js";
import {
  type BasebackupSourceConfig,
  basebackupSourceSchema,
} from "../src/sources/basebackup/basebackup-config.js";
import { BasebackupSource, type BasebackupSourceDeps } from "../src/sources/basebackup/basebackup-source.js";
import { silentLogger } from "../src/util/log.js";

/** Root of the generated fixture. */
export const BASEBACKUPS = resolve("fixtures/generated/basebackups");

/** What fixtures/build-basebackups.sh recorded. */
export interface Expected {
  system_identifier: string;
  wal_segment_size: number;
  markers: Array<{ id: number; label: string; committedAt: string; timeline: number }>;
  backups: Array<{
    dir: string;
    historyFile: string;
    startLsn: string;
    stopLsn: string;
    startTime: string;
    stopTime: string;
  }>;
  latest: { timeline1: string[] };
  timeline: { switch_lsn: string; partial: string; at_fork: string[]; latest: string[] };
  snapshots: { crash: string[]; label: string[] };
  damaged: Record<string, { removed?: string; file?: string; note: string }>;
}

/** Builds the fixture if needed (the script's own lock keeps parallel test files from building it twice). */
export function buildBasebackups(): Expected {
  execFileSync("bash", [resolve("fixtures/build-basebackups.sh"), BASEBACKUPS], {
    stdio: ["ignore", "ignore", "inherit"],
    timeout: 300_000,
  });
  return JSON.parse(readFileSync(join(BASEBACKUPS, "expected.json"), "utf8")) as Expected;
}

/**
 * An ISO time in microseconds since the epoch: commit times carry microseconds, and Date.parse
 * would drop them, counting a commit 0.4 ms after a target of the same millisecond as before it.
 */
function isoMicros(iso: string): number {
  const frac = /\.(\d+)Z$/.exec(iso)?.[1] ?? "";
  return Date.parse(iso.replace(/\.\d+Z$/, "Z")) * 1000 + Number(frac.padEnd(6, "0").slice(0, 6));
}

/** Marker labels committed at or before `time` on timeline 1 (what a PITR to `time` must hold). */
export function markersAt(expected: Expected, time: string): string[] {
  const t = isoMicros(time);
  return expected.markers
    .filter((m) => m.timeline === 1 && isoMicros(m.committedAt) <= t)
    .sort((a, b) => a.id - b.id)
    .map((m) => m.label);
}

/** A basebackup source configuration over fixture folders (paths relative to the fixture root). */
export function sourceConfig(
  path: string,
  wal: string | undefined,
  extra: Record<string, unknown> = {},
): BasebackupSourceConfig {
  return basebackupSourceSchema.parse({
    name: `fixture-${path.replace(/[^A-Za-z0-9]+/g, "-")}`,
    type: "basebackup",
    path: join(BASEBACKUPS, path),
    ...(wal ? { wal_archive: join(BASEBACKUPS, wal) } : {}),
    // the fixture is old by the time tests run: archiving "stalls" only after a century here
    wal_stall: { warning: "36500d", critical: "73000d" },
    ...extra,
  });
}

/** Lists a fixture source. */
export async function listFixture(
  cfg: BasebackupSourceConfig,
  deps: BasebackupSourceDeps = {},
): Promise<{ source: BasebackupSource; backups: Backup[] }> {
  const source = new BasebackupSource(cfg, deps);
  return { source, backups: await source.list({ logger: silentLogger }) };
}

/** What a drill through the restorer left: the outcome or the error, and the marker rows. */
export interface DrillOutcome {
  outcome?: RestoreOutcome;
  error?: Error;
  markers?: string[];
  progress: string[];
}

/** The run label this test process gives its sandboxes (for the leftover check). */
export const RUN_LABEL = `phys${process.pid}`;

/**
 * Restores `plan` in a fresh local sandbox the way the orchestrator does (inputs from the
 * restorer, mode from the restorer), reads the marker rows, runs `inside`, and destroys it.
 */
export async function drill(
  cfg: BasebackupSourceConfig,
  plan: DrillPlan,
  inside?: (sandbox: Sandbox, outcome: RestoreOutcome) => Promise<void>,
): Promise<DrillOutcome> {
  const restorer = new BasebackupSource(cfg).restorer(plan.backup);
  const runtime = new LocalRuntime({ user: "postgres", logger: silentLogger });
  const sandbox = await runtime.provision({
    pgMajor: plan.backup.pgMajor ?? 15,
    allowNewer: false,
    labels: { run: RUN_LABEL, source: cfg.name, backup: plan.backup.id },
    mode: restorer.sandboxMode,
    inputs: (restorer.inputs?.(plan) ?? [plan.backup.location]).map((hostPath) => ({ hostPath })),
  });
  const progress: string[] = [];
  try {
    let outcome: RestoreOutcome;
    try {
      outcome = await restorer.restore(sandbox, {
        plan,
        logger: silentLogger,
        timeoutMs: 180_000,
        progress: (t) => progress.push(t),
      });
    } catch (err) {
      return { error: err as Error, progress };
    }
    const markers = await withClient(sandbox, "postgres", async (c) =>
      (await c.query<{ label: string }>("select label from public.markers order by id")).rows.map(
        (r) => r.label,
      ),
    );
    await inside?.(sandbox, outcome);
    return { outcome, markers, progress };
  } finally {
    await sandbox.destroy();
  }
}

/** Sandboxes of this test process still on disk, and postgres processes running on them. */
export function leftovers(): { dirs: string[]; processes: string[] } {
  const base = join(tmpdir(), "attest-sandboxes");
  const dirs = existsSync(base) ? readdirSync(base).filter((n) => n.includes(`-${RUN_LABEL}-`)) : [];
  const ps = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
  const processes = ps.split("\n").filter((l) => l.includes(`attest-sandboxes/attest-${RUN_LABEL}-`));
  return { dirs, processes };
}

/** What fixtures/build-basebackups.sh recorded about the tablespace cluster (tablespace/expected.json). */
export interface TablespaceExpected {
  tablespace_oid: string;
  /** The production tablespace directory on the host. */
  tablespace_dir: string;
  rows: number;
  rows_md5: string;
  /** The string the host file named by the hostile include_if_exists holds. */
  canary: string;
  /** Host directory holding prod-ts/, other-cluster/, host-wal/, canary-secret. */
  host: string;
  markers: string[];
}

/** Reads tablespace/expected.json of a built fixture. */
export function tablespaceExpected(): TablespaceExpected {
  return JSON.parse(
    readFileSync(join(BASEBACKUPS, "tablespace", "expected.json"), "utf8"),
  ) as TablespaceExpected;
}

/**
 * Every entry under `dir` (not following links) with its type, mode, size and content hash (or
 * link target): equal before and after means nothing was written, replaced or removed there.
 */
export function treeDigest(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const p = rel ? join(dir, rel) : dir;
    const st = lstatSync(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[rel || "."] = `link ${readlinkSync(p)}`;
    else if (st.isDirectory()) {
      out[rel || "."] = `dir ${mode} ${st.uid}`;
      for (const n of readdirSync(p).sort()) walk(rel ? join(rel, n) : n);
    } else
      out[rel] =
        `file ${mode} ${st.uid} ${st.size} ${createHash("sha256").update(readFileSync(p)).digest("hex")}`;
  };
  walk("");
  return out;
}
