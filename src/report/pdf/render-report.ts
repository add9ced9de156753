/** Renders a report model to a PDF: cover, summary, violations, charts, drills, chain. */

import { redactDeep } from "../../util/redact.js";
import { REPORT_STATUS_WORDS, statusLabel } from "../cover-status.js";
import { controlsSection } from "../frameworks/control-section.js";
import type { ReportModel } from "../report-model.js";
import { drillPage } from "./drill-page.js";
import { COLORS, colorOf, FONT, pdfText, seriesName, shortTime } from "./pdf-style.js";
import { type Cell, PdfWriter } from "./pdf-writer.js";
import { chartsSection, drillTableSection, summarySection, violationsSection } from "./sections.js";

/** Writes the report to `file`. */
export async function renderReport(given: ReportModel, file: string): Promise<void> {
  // a secret that reached a stored reason or message is masked in the document too
  const model = redactDeep(given);
  const w = new PdfWriter({
    title: `${model.organization.name} - ${model.title}`,
    author: model.organization.name,
    subject: `${model.title} ${model.runId ?? `${model.period.from} - ${model.period.to}`}`,
  });
  w.footer((page, pages) =>
    [
      model.organization.name,
      model.title,
      model.runId ?? `${model.period.from.slice(0, 10)} to ${model.period.to.slice(0, 10)}`,
      `page ${page} of ${pages}`,
    ].join("  |  "),
  );
  cover(w, model);
  w.newPage();
  summarySection(w, model);
  violationsSection(w, model);
  chartsSection(w, model);
  for (const [i, d] of model.drillPages.entries()) drillPage(w, d, i + 1, model.drillPages.length);
  if (model.kind === "export") drillTableSection(w, model);
  if (model.controls?.length) controlsSection(w, model.controls);
  chain(w, model);
  await w.save(file);
}

function cover(w: PdfWriter, m: ReportModel): void {
  const doc = w.doc;
  doc.rect(0, 0, doc.page.width, 8).fill(COLORS.accent);
  w.y = 56;
  doc
    .font(FONT.bold)
    .fontSize(22)
    .fillColor(COLORS.accent)
    .text(pdfText(m.organization.name), w.left, w.y, { width: w.width });
  if (m.organization.department)
    doc
      .font(FONT.regular)
      .fontSize(12)
      .fillColor(COLORS.muted)
      .text(pdfText(m.organization.department), { width: w.width });
  w.gap(18);
  doc
    .font(FONT.bold)
    .fontSize(19)
    .fillColor(COLORS.text)
    .text(pdfText(m.title), w.left, w.y, { width: w.width });
  const period =
    m.kind === "export"
      ? `Period ${shortTime(m.period.from)} to ${shortTime(m.period.to)}`
      : `Run from ${shortTime(m.period.from)} to ${shortTime(m.period.to)}`;
  doc.font(FONT.regular).fontSize(11).fillColor(COLORS.muted).text(pdfText(period), { width: w.width });
  w.gap(18);

  // the overall status as a coloured box
  const boxH = 64;
  const top = w.y;
  doc.rect(w.left, top, w.width, boxH).fill(colorOf(m.status));
  doc
    .font(FONT.bold)
    .fontSize(m.status === "no-evidence" ? 19 : 26)
    .fillColor("#ffffff")
    .text(statusLabel(m.status), w.left + 16, top + (m.status === "no-evidence" ? 14 : 10), {
      width: 170,
      lineBreak: false,
    });
  doc
    .font(FONT.regular)
    .fontSize(10.5)
    .fillColor("#ffffff")
    .text(pdfText(REPORT_STATUS_WORDS[m.status].replace(/^[A-Z ]+ - /, "")), w.left + 190, top + 14, {
      width: w.width - 206,
      height: 28,
      ellipsis: true,
    });
  doc.fontSize(9.5).text(pdfText(m.statusLine), w.left + 190, top + 40, {
    width: w.width - 206,
    height: 22,
    ellipsis: true,
  });
  w.y = top + boxH + 16;

  const series = m.summary.length;
  const sources = new Set(m.summary.map((s) => s.source)).size;
  const crit = m.violations.filter((v) => v.severity === "critical").length;
  const facts: Array<[string, Cell]> = [
    ["Generated", shortTime(m.generatedAt)],
    ...(m.runId ? ([["Run", { text: m.runId, mono: true }]] as Array<[string, Cell]>) : []),
    ...(m.label ? ([["Label", m.label]] as Array<[string, Cell]>) : []),
    ["Scope", `${sources} source${sources === 1 ? "" : "s"}, ${series} series`],
    ["Result", m.statusLine],
    [
      "Violations",
      m.violations.length === 0
        ? { text: "none", color: COLORS.pass }
        : {
            text: `${crit} critical, ${m.violations.length - crit} warning${m.violations.length - crit === 1 ? "" : "s"} (${[...new Set(m.violations.map((v) => v.rule))].join(", ")})`,
            color: crit ? COLORS.critical : COLORS.warning,
            bold: true,
          },
    ],
    [
      "History chain",
      m.chain.ok
        ? { text: `intact: ${m.chain.rows} rows verified`, color: COLORS.pass, bold: true }
        : { text: `BROKEN: ${m.chain.problem ?? "verification failed"}`, color: COLORS.fail, bold: true },
    ],
    [m.chain.ok ? "Chain head (SHA-256)" : "Last good hash", { text: m.chain.head, mono: true }],
    ...(m.bundle
      ? ([["Bundle content SHA-256", { text: m.bundle.contentSha256, mono: true }]] as Array<[string, Cell]>)
      : []),
  ];
  w.keyValues(facts, 130, 10);
  if (!m.chain.ok) {
    w.gap(8);
    w.paragraph(
      "The history file failed verification: a row was edited, inserted or removed after it was written. " +
        "Records after the break cannot be trusted as evidence until the cause is explained.",
      { color: COLORS.fail, bold: true },
    );
  }
  scopeTable(w, m);
  attention(w, m);
  if (m.notes.length) {
    w.gap(10);
    for (const n of m.notes) w.paragraph(`Note: ${n}`, { size: 8.5, color: COLORS.muted });
  }
}

/** Rows of the cover's scope table before the rest is left to the summary pages. */
const SCOPE_ROWS = 12;

function scopeTable(w: PdfWriter, m: ReportModel): void {
  w.gap(12);
  w.heading(m.kind === "export" ? "Scope and evidence in the period" : "Scope and evidence of the run", 2);
  if (m.scope.length === 0) {
    w.paragraph("No source is configured: there is nothing this report can vouch for.", {
      color: colorOf("no-evidence"),
      bold: true,
    });
    return;
  }
  const rows = m.scope
    .slice(0, SCOPE_ROWS)
    .map((r): Cell[] => [
      seriesName(r.source, r.series) || "-",
      r.status
        ? { text: statusLabel(r.status), color: colorOf(r.status), bold: true }
        : { text: r.drills ? "-" : "not drilled", color: COLORS.muted },
      String(r.drills),
      r.lastPass
        ? shortTime(r.lastPass)
        : { text: "none", color: r.needsVerification ? COLORS.warn : COLORS.muted },
      r.needsVerification ? "yes" : "no",
    ]);
  w.table(
    [
      { header: "Source / series", width: 30 },
      { header: "Status", width: 17 },
      { header: "Drills", width: 10, align: "right" },
      { header: "Last passing drill", width: 26 },
      { header: "Must be verified", width: 17 },
    ],
    rows,
    { zebra: true },
  );
  if (m.scope.length > SCOPE_ROWS)
    w.paragraph(`... and ${m.scope.length - SCOPE_ROWS} more series: see the summary.`, {
      size: 8.5,
      color: COLORS.muted,
    });
}

/** How many items the cover's "needs attention" list shows. */
const ATTENTION_ITEMS = 8;

function attention(w: PdfWriter, m: ReportModel): void {
  const items = m.attention;
  if (items.length === 0) return;
  w.gap(12);
  w.heading("Needs attention", 2);
  for (const item of items.slice(0, ATTENTION_ITEMS)) {
    const when = item.first
      ? item.last
        ? `${shortTime(item.first)} to ${shortTime(item.last)}: `
        : `${shortTime(item.first)}: `
      : "";
    const text = `${when}${item.text}`;
    const doc = w.doc;
    doc.font(FONT.regular).fontSize(9);
    const h = Math.min(doc.heightOfString(pdfText(text), { width: w.width - 72 }), 40);
    w.ensure(h + 4);
    const y = w.y;
    doc
      .font(FONT.bold)
      .fontSize(8.5)
      .fillColor(colorOf(item.tone as "fail"))
      .text(item.tag, w.left, y, { width: 70, lineBreak: false });
    doc
      .font(FONT.regular)
      .fontSize(9)
      .fillColor(COLORS.text)
      .text(pdfText(text), w.left + 72, y, { width: w.width - 72, height: h + 1, ellipsis: true });
    w.y = y + h + 4;
  }
  if (items.length > ATTENTION_ITEMS) {
    w.paragraph(`... and ${items.length - ATTENTION_ITEMS} more: see the following pages.`, {
      size: 9,
      color: COLORS.muted,
    });
  }
}

function chain(w: PdfWriter, m: ReportModel): void {
  w.heading("Integrity of the history", 1, 60);
  w.keyValues([
    [
      "Chain",
      m.chain.ok
        ? { text: "intact", color: COLORS.pass, bold: true }
        : { text: "BROKEN", color: COLORS.fail, bold: true },
    ],
    ["Rows verified", String(m.chain.rows)],
    ...(m.chain.problem
      ? ([["Problem", { text: m.chain.problem, color: COLORS.fail }]] as Array<[string, Cell]>)
      : []),
    [m.chain.ok ? "Head hash (SHA-256)" : "Last good hash", { text: m.chain.head, mono: true }],
  ]);
  w.paragraph(
    "Each history row carries the SHA-256 hash of the row before it. Keep the head hash above: `attest history verify` " +
      "recomputes the chain, and a removed, inserted or edited row no longer leads to it.",
    { size: 8.5, color: COLORS.muted },
  );
}
