/** One page per drill: verdict, backup, timings, checks, restored inventory. */
import type { Inventory } from "../../model.js";
import { formatBytes, formatDuration } from "../../util/duration.js";
import type { ReportDrill } from "../report-model.js";
import { phaseBar } from "./chart-parts.js";
import { COLORS, colorOf, FONT, pdfText, seriesName, shortTime } from "./pdf-style.js";
import type { Cell, PdfWriter } from "./pdf-writer.js";

/** A drill's page (starts a new page). */
export function drillPage(w: PdfWriter, d: ReportDrill, i: number, n: number): void {
  const r = d.result;
  w.newPage();
  w.heading(`Drill ${i} of ${n}: ${seriesName(r.source, r.series)}`);
  const doc = w.doc;
  const top = w.y;
  doc.rect(w.left, top, 64, 20).fill(colorOf(r.verdict));
  doc
    .font(FONT.bold)
    .fontSize(12)
    .fillColor("#ffffff")
    .text(r.verdict.toUpperCase(), w.left, top + 4.5, { width: 64, align: "center", lineBreak: false });
  doc
    .font(FONT.regular)
    .fontSize(9.5)
    .fillColor(COLORS.text)
    .text(pdfText(r.reason || "-"), w.left + 74, top + 1, {
      width: w.width - 74,
      height: 36,
      ellipsis: true,
    });
  w.y = Math.max(top + 26, doc.y + 4);

  const b = r.backup;
  const reached = r.reached
    ? [
        r.reached.lsn && `LSN ${r.reached.lsn}`,
        r.reached.timestamp && shortTime(r.reached.timestamp),
        r.reached.timeline && `timeline ${r.reached.timeline}`,
      ]
        .filter(Boolean)
        .join(", ")
    : "";
  const target = r.target
    ? r.target.kind === "time"
      ? `time ${r.target.time}`
      : r.target.kind === "lsn"
        ? `LSN ${r.target.lsn}`
        : r.target.kind
    : "";
  w.keyValues([
    ["Backup", { text: b.id, mono: true }],
    ["Family / format", `${b.family} / ${b.format}`],
    ["Taken at", shortTime(b.createdAt)],
    ["Size", formatBytes(b.sizeBytes)],
    ...(b.location ? ([["Location", { text: b.location, mono: true }]] as Array<[string, Cell]>) : []),
    [
      "PostgreSQL",
      `${b.pgMajor ? `backup from ${b.pgMajor}` : "backup major unknown"}${r.sandboxMajor ? `, restored into ${r.sandboxMajor}` : ""}`,
    ],
    ["Runtime", r.runtime || "-"],
    ...(target ? ([["Recovery target", target]] as Array<[string, Cell]>) : []),
    ...(reached ? ([["Reached", reached]] as Array<[string, Cell]>) : []),
    ...(r.measuredRpoSeconds !== undefined
      ? ([["Measured RPO", formatDuration(r.measuredRpoSeconds * 1000)]] as Array<[string, Cell]>)
      : []),
    ...(r.newestData ? ([["Newest data", shortTime(r.newestData)]] as Array<[string, Cell]>) : []),
    ["Recorded", shortTime(d.at)],
    ["Evidence file", { text: r.evidence ?? "-", mono: true }],
  ]);

  w.heading(`Timings: ${formatDuration(r.timings.totalMs)} in total`, 2);
  phaseBar(w, r.timings);

  w.heading("Checks", 2);
  if (r.checks.length === 0) w.paragraph("No check ran.", { color: COLORS.muted, size: 9 });
  else {
    w.table(
      [
        { header: "Check", width: 18 },
        { header: "Status", width: 9 },
        { header: "Time", width: 9, align: "right" },
        { header: "Detail", width: 64 },
      ],
      r.checks.map((c) => [
        c.name,
        {
          text: c.status.toUpperCase(),
          color: colorOf(
            c.status === "skip"
              ? "n/a"
              : c.status === "fail"
                ? "fail"
                : c.status === "error"
                  ? "error"
                  : c.status === "warn"
                    ? "warn"
                    : "pass",
          ),
          bold: true,
        },
        c.durationMs !== undefined ? formatDuration(c.durationMs) : "",
        c.detail,
      ]),
      { maxRowHeight: 90 },
    );
  }

  w.heading("Restored inventory (evidence)", 2);
  if (d.inventory) inventory(w, d.inventory);
  else
    w.paragraph(d.evidenceProblem ?? "No inventory was recorded for this drill.", {
      color: COLORS.muted,
      size: 9,
    });
  if (r.notes.length) {
    w.heading("Notes", 2);
    for (const note of r.notes) w.paragraph(`- ${note}`, { size: 9 });
  }
}

/** How many tables of a drill's inventory the report lists. */
const TABLE_ROWS = 25;

function inventory(w: PdfWriter, inv: Inventory): void {
  w.table(
    [
      { header: "Database", width: 18 },
      { header: "Schemas", width: 9, align: "right" },
      { header: "Tables", width: 8, align: "right" },
      { header: "Rows", width: 12, align: "right" },
      { header: "Indexes", width: 9, align: "right" },
      { header: "Sequences", width: 11, align: "right" },
      { header: "Views", width: 7, align: "right" },
      { header: "Extensions", width: 26 },
    ],
    inv.databases.map((db) => [
      db.name,
      String(db.schemas.length),
      String(db.tables.length),
      db.tables.reduce((a, t) => a + t.rows, 0).toLocaleString("en-US"),
      String(db.indexes),
      String(db.sequences),
      String(db.views),
      db.extensions.join(", ") || "-",
    ]),
  );
  const tables = inv.databases
    .flatMap((db) => db.tables.map((t) => ({ db: db.name, ...t })))
    .sort((a, b) => b.rows - a.rows || a.name.localeCompare(b.name));
  if (tables.length) {
    w.table(
      [
        { header: "Database", width: 22 },
        { header: `Table (largest ${Math.min(TABLE_ROWS, tables.length)} of ${tables.length})`, width: 56 },
        { header: "Rows", width: 22, align: "right" },
      ],
      tables.slice(0, TABLE_ROWS).map((t) => [t.db, t.name, t.rows.toLocaleString("en-US")]),
      { zebra: true },
    );
  }
  if (inv.roles.length) w.paragraph(`Roles: ${inv.roles.join(", ")}`, { size: 8.5 });
}
