/** Reading drills and violations back out of history rows. */
import type { HistoryRecord } from "../history/history-record.js";
import type {
  Backup,
  CheckStatus,
  DrillResult,
  Family,
  RecoveryTarget,
  Verdict,
  Violation,
} from "../model.js";

const num = (s: string): number | undefined =>
  s === "" || !Number.isFinite(Number(s)) ? undefined : Number(s);

function targetOf(text: string): RecoveryTarget | undefined {
  if (!text) return undefined;
  if (text.startsWith("time:")) return { kind: "time", time: text.slice(5) };
  if (text.startsWith("lsn:")) return { kind: "lsn", lsn: text.slice(4) };
  if (text === "immediate" || text === "latest") return { kind: text };
  return undefined;
}

/** A drill result as far as a history row keeps it (check details live in the evidence file). */
export function drillOfRecord(r: HistoryRecord): DrillResult {
  const d: DrillResult = {
    source: r.source,
    series: r.series,
    backup: {
      id: r.backupId,
      family: (r.family || "logical") as Family,
      format: r.format,
      createdAt: r.backupCreatedAt,
      sizeBytes: num(r.sizeBytes) ?? 0,
      location: "",
    },
    runtime: r.runtime,
    verdict: r.verdict as Verdict,
    reason: r.reason,
    timings: {
      provisionMs: num(r.provisionMs) ?? 0,
      restoreMs: num(r.restoreMs) ?? 0,
      recoveryMs: num(r.recoveryMs) ?? 0,
      checksMs: num(r.checksMs) ?? 0,
      teardownMs: num(r.teardownMs) ?? 0,
      totalMs: num(r.totalMs) ?? 0,
    },
    checks: r.checks
      ? r.checks.split(";").map((c) => {
          const [name = "", status = "skip"] = c.split("=");
          return { name, status: status as CheckStatus, detail: "" };
        })
      : [],
    notes: [],
  };
  const target = targetOf(r.target);
  if (target) d.target = target;
  if (r.reachedLsn || r.reachedTimestamp || r.reachedTimeline) {
    d.reached = {
      ...(r.reachedLsn ? { lsn: r.reachedLsn } : {}),
      ...(r.reachedTimestamp ? { timestamp: r.reachedTimestamp } : {}),
      ...(num(r.reachedTimeline) !== undefined ? { timeline: num(r.reachedTimeline)! } : {}),
    };
  }
  const rpo = num(r.measuredRpoSeconds);
  if (rpo !== undefined) d.measuredRpoSeconds = rpo;
  if (r.newestData) d.newestData = r.newestData;
  if (r.evidence) d.evidence = r.evidence;
  return d;
}

/** A violation as a history row keeps it. */
export function violationOfRecord(r: HistoryRecord): Violation {
  const v: Violation = {
    source: r.source,
    rule: r.rule,
    severity: r.severity === "critical" ? "critical" : "warning",
    message: r.message,
  };
  if (r.series) v.series = r.series;
  if (r.since) v.since = r.since;
  if (r.evidence) {
    try {
      v.evidence = JSON.parse(r.evidence) as Record<string, unknown>;
    } catch {
      v.evidence = { text: r.evidence };
    }
  }
  return v;
}

/** Backups known from drills (when no inventory is at hand): one per backup id, oldest first. */
export function backupsOfDrills(drills: ReadonlyArray<DrillResult>): Backup[] {
  const seen = new Map<string, Backup>();
  for (const d of drills) {
    const key = `${d.source}\u0000${d.backup.id}`;
    if (seen.has(key) || !d.backup.createdAt) continue;
    seen.set(key, {
      source: d.source,
      id: d.backup.id,
      series: d.series,
      family: d.backup.family,
      format: d.backup.format,
      createdAt: d.backup.createdAt,
      createdAtOrigin: "header",
      sizeBytes: d.backup.sizeBytes,
      location: d.backup.location,
      labels: {},
    });
  }
  return [...seen.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}
