/** The report's table and chart sections: summary, coverage, violations, charts, drills of a period. */
import type { SeriesStatus } from "../../policy/series-status.js";
import { formatDuration } from "../../util/duration.js";
import type { ReportModel } from "../report-model.js";
import { COLORS, colorOf, seriesName, utc } from "./pdf-style.js";
import type { Cell, PdfWriter } from "./pdf-writer.js";
import { rtoChart } from "./rto-chart.js";
import { timelineChart } from "./timeline-chart.js";

const ago = (seconds: number | undefined) =>
  seconds === undefined ? "-" : `${formatDuration(seconds * 1000)} ago`;

const STATE_WORDS: Record<string, string> = {
  ok: "OK",
  warning: "WARN",
  critical: "CRIT",
  "n/a": "n/a",
  unverified: "n/v",
};

function stateCell(s: string): Cell {
  return { text: STATE_WORDS[s] ?? s, color: colorOf(s as "ok"), bold: s !== "n/a" && s !== "ok" };
}

/** Summary per source and series, and (export) coverage. */
export function summarySection(w: PdfWriter, m: ReportModel): void {
  const exported = m.kind === "export";
  w.heading("Summary per source and series", 1, 40);
  if (m.summary.length === 0) {
    w.paragraph("No source or series to report.", { color: COLORS.muted });
    return;
  }
  // an export knows backups only from drills: its newest recovery point is the newest verified backup
  const end = Math.min(Date.parse(m.period.to), Date.parse(m.generatedAt));
  const verifiedAge = (s: SeriesStatus) =>
    s.lastVerifiedBackupAt ? Math.max(0, (end - Date.parse(s.lastVerifiedBackupAt)) / 1000) : undefined;
  const rows = m.summary.map((s: SeriesStatus): Cell[] => [
    seriesName(s.source, s.series),
    String(s.backups),
    exported
      ? s.lastVerifiedBackupAt
        ? `${utc(s.lastVerifiedBackupAt)}\n${ago(verifiedAge(s))}`
        : { text: "none verified", color: COLORS.warn, bold: true }
      : s.newestBackupAt
        ? `${utc(s.newestBackupAt)}\n${ago(s.newestAgeSeconds)}`
        : { text: "none", color: COLORS.fail, bold: true },
    s.lastVerifiedAt
      ? `${utc(s.lastVerifiedAt)}${s.lastVerifiedBackupAt ? `\n(backup ${utc(s.lastVerifiedBackupAt)})` : ""}`
      : { text: "never", color: COLORS.warn, bold: true },
    s.lastDrill
      ? {
          text: `${s.lastDrill.verdict.toUpperCase()}${s.lastDrill.totalMs ? ` ${formatDuration(s.lastDrill.totalMs)}` : ""}`,
          color: colorOf(s.lastDrill.verdict as "pass"),
          bold: true,
        }
      : "-",
    stateCell(s.rpo),
    stateCell(s.rto),
    stateCell(s.retention),
    stateCell(s.other),
  ]);
  w.table(
    [
      { header: "Source / series", width: 19 },
      // an export knows backups only from the drills in history
      { header: exported ? "Drilled" : "Backups", width: 9, align: "right" },
      { header: exported ? "Newest verified backup (UTC)" : "Newest backup (UTC)", width: 15.5 },
      { header: "Last verified (UTC)", width: 16 },
      { header: "Last drill", width: 10 },
      { header: "RPO", width: 7 },
      { header: "RTO", width: 7 },
      { header: "Retention", width: 9.5 },
      { header: "Other", width: 7 },
    ],
    rows,
    { zebra: true },
  );
  w.paragraph(
    `Other: max_gap, verify_every, size_anomaly, wal_continuity, clock_skew, last_drill. CRIT critical, WARN warning, n/a no target configured, n/v not verified: no passing drill proves the series, so it meets no rule yet.${exported ? " Ages are at the end of the period." : ""}`,
    {
      size: 7.5,
      color: COLORS.muted,
    },
  );

  if (m.coverage) {
    w.heading("Verification coverage", 2);
    w.table(
      [
        { header: "Source / series", width: 26 },
        { header: "Drills", width: 8, align: "right" },
        { header: "Pass", width: 7, align: "right" },
        { header: "Warn", width: 7, align: "right" },
        { header: "Fail", width: 7, align: "right" },
        { header: "Error", width: 7, align: "right" },
        { header: "Last pass (UTC)", width: 18 },
        { header: "Longest unverified", width: 16 },
      ],
      m.coverage.map((c) => [
        seriesName(c.source, c.series),
        String(c.drills),
        String(c.pass),
        String(c.warn),
        c.fail ? { text: String(c.fail), color: COLORS.fail, bold: true } : "0",
        c.error ? { text: String(c.error), color: COLORS.error, bold: true } : "0",
        c.lastPass ? utc(c.lastPass) : { text: "none in period", color: COLORS.warn },
        formatDuration(c.longestUnverifiedMs),
      ]),
      { zebra: true },
    );
  }
}

/** The violations table. */
export function violationsSection(w: PdfWriter, m: ReportModel): void {
  w.heading(m.kind === "export" ? "Policy violations in the period" : "Policy violations", 1, 40);
  if (m.violations.length === 0) {
    w.paragraph("No policy violation.", { color: COLORS.pass });
    return;
  }
  const exp = m.kind === "export";
  w.table(
    [
      { header: "Severity", width: 10 },
      { header: "Rule", width: 12 },
      { header: "Source / series", width: 15 },
      { header: "What is wrong", width: exp ? 40 : 49 },
      { header: exp ? "Seen (UTC)" : "Since (UTC)", width: exp ? 23 : 14 },
    ],
    m.violations.map((v) => [
      { text: v.severity.toUpperCase(), color: colorOf(v.severity), bold: true },
      v.rule,
      seriesName(v.source, v.series),
      v.message,
      exp
        ? `${utc(v.firstSeen)} to ${utc(v.lastSeen)} (${v.runs ?? 1} run${v.runs === 1 ? "" : "s"})`
        : v.since
          ? utc(v.since)
          : "-",
    ]),
    { zebra: true },
  );
}

/** Restore time per drill, and backups against the retention window. */
export function chartsSection(w: PdfWriter, m: ReportModel): void {
  w.heading("Restore time per drill", 1, 160);
  if (m.rto.every((s) => s.points.length === 0))
    w.paragraph("No drill with a recorded restore time.", { color: COLORS.muted });
  else for (const s of m.rto.filter((r) => r.points.length > 0)) rtoChart(w, s);
  w.heading("Backups against the retention window", 1, 80);
  if (m.timelines.every((t) => t.backups.length === 0))
    w.paragraph("No backup to show.", { color: COLORS.muted });
  else
    timelineChart(
      w,
      m.timelines.filter((t) => t.backups.length > 0),
      m.period.to,
      // an export's axis is its period; a run's reaches back to show the retention window
      m.kind === "export" ? m.period.from : undefined,
    );
}

/** The drills of an export's period, one row each. */
export function drillTableSection(w: PdfWriter, m: ReportModel): void {
  w.heading("Drills in the period", 1, 40);
  if (m.drillRows.length === 0) {
    w.paragraph("No drill was recorded in the period: it holds no evidence that a backup can be restored.", {
      color: colorOf("no-evidence"),
      bold: true,
    });
    return;
  }
  w.table(
    [
      { header: "Recorded (UTC)", width: 13.5 },
      { header: "Run", width: 15 },
      { header: "Source / series", width: 13 },
      { header: "Backup", width: 19 },
      { header: "Verdict", width: 8 },
      { header: "Total (s)", width: 8, align: "right" },
      { header: "Reason", width: 23.5 },
    ],
    m.drillRows.map((d) => [
      utc(d.at),
      { text: d.runId ?? "-", mono: true },
      seriesName(d.result.source, d.result.series),
      { text: d.result.backup.id, mono: true },
      { text: d.result.verdict.toUpperCase(), color: colorOf(d.result.verdict), bold: true },
      (d.result.timings.totalMs / 1000).toFixed(1),
      d.result.reason,
    ]),
    { zebra: true, fontSize: 7.5, maxRowHeight: 60 },
  );
}
