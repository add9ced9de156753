/** Renders a report model to a PDF: cover, summary, violations, charts, drills, chain. */
import type { ReportModel } from "../report-model.js";
import { STATUS_WORDS } from "../report-model.js";
import { drillPage } from "./drill-page.js";
import { COLORS, colorOf, FONT, pdfText, seriesName, shortTime } from "./pdf-style.js";
import { type Cell, PdfWriter } from "./pdf-writer.js";
import { chartsSection, drillTableSection, summarySection, violationsSection } from "./sections.js";

/** Writes the report to `file`. */
export async function renderReport(model: ReportModel, file: string): Promise<void> {
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
  chain(w, model);
  await w.save(file);
}

function cover(w: PdfWriter, m: ReportModel): void {
  const doc = w.doc;
  doc.rect(0, 0, doc.page.width, 8).fill(COLORS.accent);
  w.y = 70;
  doc
    .font(FONT.bold)
    .fontSize(24)
    .fillColor(COLORS.accent)
    .text(pdfText(m.organization.name), w.left, w.y, { width: w.width });
  if (m.organization.department)
    doc
      .font(FONT.regular)
      .fontSize(13)
      .fillColor(COLORS.muted)
      .text(pdfText(m.organization.department), { width: w.width });
  w.gap(26);
  doc
    .font(FONT.bold)
    .fontSize(20)
    .fillColor(COLORS.text)
    .text(pdfText(m.title), w.left, w.y, { width: w.width });
  const period =
    m.kind === "export"
      ? `Period ${shortTime(m.period.from)} to ${shortTime(m.period.to)}`
      : `Run from ${shortTime(m.period.from)} to ${shortTime(m.period.to)}`;
  doc.font(FONT.regular).fontSize(11).fillColor(COLORS.muted).text(pdfText(period), { width: w.width });
  w.gap(24);

  // the overall status as a coloured box
  const boxH = 64;
  const top = w.y;
  doc.rect(w.left, top, w.width, boxH).fill(colorOf(m.status));
  doc
    .font(FONT.bold)
    .fontSize(26)
    .fillColor("#ffffff")
    .text(m.status.toUpperCase(), w.left + 16, top + 10, { width: 150, lineBreak: false });
  doc
    .font(FONT.regular)
    .fontSize(10.5)
    .fillColor("#ffffff")
    .text(pdfText(STATUS_WORDS[m.status].replace(/^\w+ - /, "")), w.left + 160, top + 14, {
      width: w.width - 176,
      height: 16,
      ellipsis: true,
    });
  doc.fontSize(9.5).text(pdfText(m.statusLine), w.left + 160, top + 34, {
    width: w.width - 176,
    height: 24,
    ellipsis: true,
  });
  w.y = top + boxH + 20;

  const series = m.summary.length;
  const sources = new Set(m.summary.map((s) => s.source)).size;
  const facts: Array<[string, Cell]> = [
    ["Generated", shortTime(m.generatedAt)],
    ...(m.runId ? ([["Run", { text: m.runId, mono: true }]] as Array<[string, Cell]>) : []),
    ...(m.label ? ([["Label", m.label]] as Array<[string, Cell]>) : []),
    ["Scope", `${sources} source${sources === 1 ? "" : "s"}, ${series} series`],
    ["Result", m.statusLine],
    [
      "History chain",
      m.chain.ok
        ? { text: `intact: ${m.chain.rows} rows verified`, color: COLORS.pass, bold: true }
        : { text: `BROKEN: ${m.chain.problem ?? "verification failed"}`, color: COLORS.fail, bold: true },
    ],
    [m.chain.ok ? "Chain head (SHA-256)" : "Last good hash", { text: m.chain.head, mono: true }],
  ];
  w.keyValues(facts, 130, 10);
  if (!m.chain.ok) {
    w.gap(10);
    w.paragraph(
      "The history file failed verification: a row was edited, inserted or removed after it was written. " +
        "Records after the break cannot be trusted as evidence until the cause is explained.",
      { color: COLORS.fail, bold: true },
    );
  }
  attention(w, m);
  if (m.notes.length) {
    w.gap(14);
    for (const n of m.notes) w.paragraph(`Note: ${n}`, { size: 8.5, color: COLORS.muted });
  }
}

/** How many items the cover's "needs attention" list shows. */
const ATTENTION_ITEMS = 8;

function attention(w: PdfWriter, m: ReportModel): void {
  const drills = [...m.drillPages, ...m.drillRows].filter(
    (d) => d.result.verdict === "fail" || d.result.verdict === "error",
  );
  const items: Array<[string, string, string]> = [
    ...drills.map((d): [string, string, string] => [
      d.result.verdict.toUpperCase(),
      colorOf(d.result.verdict),
      `drill of ${seriesName(d.result.source, d.result.series)} (${d.result.backup.id}): ${d.result.reason}`,
    ]),
    ...m.violations
      .filter((v) => v.severity === "critical")
      .map((v): [string, string, string] => ["CRITICAL", COLORS.critical, `${v.rule}: ${v.message}`]),
  ];
  if (items.length === 0) return;
  w.gap(16);
  w.heading("Needs attention", 2);
  for (const [tag, color, text] of items.slice(0, ATTENTION_ITEMS)) {
    const doc = w.doc;
    doc.font(FONT.regular).fontSize(9);
    const h = Math.min(doc.heightOfString(pdfText(text), { width: w.width - 62 }), 40);
    w.ensure(h + 4);
    const y = w.y;
    doc.font(FONT.bold).fontSize(8.5).fillColor(color).text(tag, w.left, y, { width: 58, lineBreak: false });
    doc
      .font(FONT.regular)
      .fontSize(9)
      .fillColor(COLORS.text)
      .text(pdfText(text), w.left + 62, y, { width: w.width - 62, height: h + 1, ellipsis: true });
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
