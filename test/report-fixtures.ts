/** Builders shared by the policy, report, mail and alert tests: backups, drills, history rows. */
import type { PoliciesConfig, SourceConfig } from "../src/config/schema.js";
import { HISTORY_COLUMNS, type HistoryRecord } from "../src/history/history-record.js";
import type { Backup, DrillResult, Finding, Verdict } from "../src/model.js";
import type { PolicyInput } from "../src/policy/evaluate.js";

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
/** The fixed clock of every policy test. */
export const NOW = new Date("2025-03-10T12:00:00Z");

/** A time `ms` before `now`, as ISO text. */
export const ago = (ms: number, now = NOW): string => new Date(now.getTime() - ms).toISOString();

/** A backup of `series` taken `age` ms before `now`. */
export function backup(
  source: string,
  series: string,
  age: number,
  over: Partial<Backup> = {},
  now = NOW,
): Backup {
  const createdAt = ago(age, now);
  return {
    source,
    id: `${series}-${createdAt.slice(0, 16).replace(/[-:]/g, "")}.dump`,
    series,
    family: "logical",
    format: "custom",
    createdAt,
    createdAtOrigin: "header",
    sizeBytes: 100 * 1024 * 1024,
    location: `/backup/${series}.dump`,
    labels: {},
    ...over,
  };
}

/** A daily series of `n` backups, the newest `newestAge` old; `size(i)` gives the i-th size. */
export function daily(
  source: string,
  series: string,
  n: number,
  newestAge = 2 * HOUR,
  size?: (i: number) => number,
  now = NOW,
): Backup[] {
  return Array.from({ length: n }, (_, i) =>
    backup(source, series, newestAge + (n - 1 - i) * DAY, size ? { sizeBytes: size(i) } : {}, now),
  );
}

/** A drill result of this run. */
export function drill(
  b: Backup,
  verdict: Verdict = "pass",
  totalMs = 60_000,
  over: Partial<DrillResult> = {},
): DrillResult {
  const ok = verdict === "pass" || verdict === "warn";
  return {
    source: b.source,
    series: b.series,
    backup: {
      id: b.id,
      family: b.family,
      format: b.format,
      createdAt: b.createdAt,
      sizeBytes: b.sizeBytes,
      location: b.location,
    },
    runtime: "local",
    verdict,
    reason: ok
      ? "restored; all checks passed"
      : "pg_restore exited with code 1: could not read input file: end of file",
    timings: {
      provisionMs: 2000,
      restoreMs: totalMs - 5000,
      recoveryMs: 0,
      checksMs: 2500,
      teardownMs: 500,
      totalMs,
    },
    checks: [
      {
        name: "restore",
        status: ok ? "pass" : "fail",
        detail: ok ? "pg_restore finished" : "pg_restore exited with code 1",
      },
      { name: "amcheck", status: ok ? "pass" : "skip", detail: ok ? "12 relations checked" : "not restored" },
    ],
    notes: [],
    ...over,
  };
}

/** A history row of a past drill recorded at `recordedAt`. */
export function historyDrill(
  b: Backup,
  recordedAt: string,
  verdict: Verdict = "pass",
  totalMs = 60_000,
  extra: Partial<HistoryRecord> = {},
): HistoryRecord {
  const r = Object.fromEntries(HISTORY_COLUMNS.map((c) => [c, ""])) as HistoryRecord;
  return Object.assign(r, {
    recordType: "drill",
    runId: `run-${recordedAt}`,
    runKind: "audit",
    recordedAt,
    source: b.source,
    series: b.series,
    backupId: b.id,
    family: b.family,
    format: b.format,
    backupCreatedAt: b.createdAt,
    sizeBytes: String(b.sizeBytes),
    runtime: "local",
    verdict,
    reason: verdict,
    totalMs: String(totalMs),
    ...extra,
  });
}

/** A minimal dump-dir source configuration. */
export function sourceConfig(name: string, policies?: PoliciesConfig): SourceConfig {
  return {
    name,
    type: "dump-dir",
    path: "/backup",
    select: "latest",
    ...(policies ? { policies } : {}),
  } as unknown as SourceConfig;
}

/** A policy input with one source. */
export function input(
  policies: PoliciesConfig,
  backups: Backup[],
  opts: {
    drills?: DrillResult[];
    history?: HistoryRecord[];
    findings?: Finding[];
    source?: string;
    now?: Date;
  } = {},
): PolicyInput {
  return {
    now: opts.now ?? NOW,
    sources: [
      { config: sourceConfig(opts.source ?? "app-dumps"), policies, backups, findings: opts.findings ?? [] },
    ],
    drills: opts.drills ?? [],
    history: opts.history ?? [],
  };
}
