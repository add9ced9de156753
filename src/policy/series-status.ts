/** Per (source, series) status lines: what `check` prints as perfdata and the PDF summary shows. */
import type { Violation } from "../model.js";
import type { PolicyInput } from "./evaluate.js";
import { CLOCK_TOLERANCE_MS, drillRecords, epoch, iso, isPassing } from "./series-input.js";

/** State of one rule for one series; `unverified`: no violation, but no passing drill proves it either. */
export type RuleState = "ok" | "warning" | "critical" | "n/a" | "unverified";

/** One (source, series). */
export interface SeriesStatus {
  source: string;
  series: string;
  backups: number;
  newestBackupAt?: string;
  newestAgeSeconds?: number;
  /** When the last passing drill ran, and when the backup it proved was taken. */
  lastVerifiedAt?: string;
  lastVerifiedBackupAt?: string;
  /** The newest backup any passing drill proved (what the RPO rule for verified backups judges). */
  newestVerifiedBackupAt?: string;
  /** The newest drill that ended with a verdict (drills aborted by a signal are passed over). */
  lastDrill?: { verdict: string; at: string; totalMs?: number };
  /** Duration of the newest passing drill: what the RTO rule compares. */
  lastPassTotalMs?: number;
  rpoSeconds?: number;
  rtoMs?: number;
  rpo: RuleState;
  rto: RuleState;
  retention: RuleState;
  /** Worst state of every other rule (gaps, coverage, size, WAL, clock). */
  other: RuleState;
}

const RANK = { "n/a": 0, ok: 1, unverified: 1, warning: 2, critical: 3 } as const;

/**
 * Status of every series of the input's sources (those with backups or drills, and those the
 * violations name); source-wide violations count for each series.
 */
export function seriesStatuses(input: PolicyInput, violations: readonly Violation[]): SeriesStatus[] {
  const now = input.now.getTime();
  const drills = drillRecords(input.history, input.drills, now);
  const out: SeriesStatus[] = [];
  for (const src of input.sources) {
    const source = src.config.name;
    const names = new Set(src.backups.map((b) => b.series));
    for (const d of input.drills) if (d.source === source) names.add(d.series);
    for (const v of violations) if (v.source === source && v.series !== undefined) names.add(v.series);
    if (names.size === 0) names.add("");
    const p = src.policies;
    for (const series of [...names].sort()) {
      const times = src.backups
        .filter((b) => b.series === series)
        .map((b) => epoch(b.createdAt))
        .filter((t) => Number.isFinite(t) && t <= now + CLOCK_TOLERANCE_MS);
      const mine = drills.filter((d) => d.source === source && d.series === series && !d.aborted);
      const pass = mine.filter((d) => isPassing(d.verdict)).at(-1);
      const last = mine.at(-1);
      const st: SeriesStatus = {
        source,
        series,
        backups: times.length,
        rpo: p.rpo === undefined ? "n/a" : "ok",
        rto: p.rto === undefined ? "n/a" : "ok",
        retention: p.retention === undefined ? "n/a" : "ok",
        other: "ok",
      };
      if (times.length) {
        const newest = Math.max(...times);
        st.newestBackupAt = iso(newest);
        st.newestAgeSeconds = Math.max(0, Math.round((now - newest) / 1000));
      }
      if (pass) {
        st.lastVerifiedAt = iso(pass.at);
        if (Number.isFinite(pass.backupAt)) st.lastVerifiedBackupAt = iso(pass.backupAt);
      }
      const proven = mine
        .filter(
          (d) =>
            isPassing(d.verdict) && Number.isFinite(d.backupAt) && d.backupAt <= now + CLOCK_TOLERANCE_MS,
        )
        .map((d) => d.backupAt);
      if (proven.length) st.newestVerifiedBackupAt = iso(Math.max(...proven));
      if (last) st.lastDrill = { verdict: last.verdict, at: iso(last.at), totalMs: last.totalMs };
      const timed = mine.filter((d) => isPassing(d.verdict) && d.totalMs !== undefined).at(-1);
      if (timed) st.lastPassTotalMs = timed.totalMs;
      if (p.rpo !== undefined) st.rpoSeconds = p.rpo / 1000;
      if (p.rto !== undefined) st.rtoMs = p.rto;
      for (const v of violations) {
        if (v.source !== source || (v.series !== undefined && v.series !== series)) continue;
        const key = v.rule === "rpo" || v.rule === "rto" || v.rule === "retention" ? v.rule : "other";
        if (RANK[v.severity] > RANK[st[key]]) st[key] = v.severity;
      }
      // a series no drill ever verified cannot be called OK on any rule
      if (!pass)
        for (const key of ["rpo", "rto", "retention", "other"] as const)
          if (st[key] === "ok") st[key] = "unverified";
      out.push(st);
    }
  }
  return out;
}
