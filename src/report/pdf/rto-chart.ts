/** Restore time per drill: bars coloured by verdict, the RTO target as a dashed line. */
import { formatDuration } from "../../util/duration.js";
import type { RtoSeries } from "../report-model.js";
import { legend } from "./chart-parts.js";
import { axisTime, COLORS, colorOf, FONT, pdfText } from "./pdf-style.js";
import type { PdfWriter } from "./pdf-writer.js";

/** The one unit of a chart's axis and labels: seconds, minutes or hours, by the largest value. */
export function durationUnit(maxMs: number): { name: string; short: string; ms: number } {
  if (maxMs <= 3 * 60_000) return { name: "seconds", short: "s", ms: 1000 };
  if (maxMs <= 3 * 3_600_000) return { name: "minutes", short: "min", ms: 60_000 };
  return { name: "hours", short: "h", ms: 3_600_000 };
}

/** A round step (in the unit) for about `n` ticks up to `max` (in the unit). */
function niceStep(max: number, n = 4): number {
  const base = 10 ** Math.floor(Math.log10(Math.max(max / n, 1e-9)));
  for (const k of [1, 2, 2.5, 5, 10]) if (max / (k * base) <= n) return k * base;
  return 10 * base;
}

/** A value in the unit: whole numbers plain, others with one decimal. */
const inUnit = (ms: number, unitMs: number) => {
  const v = ms / unitMs;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
};

/** Bars of each drill's total time, coloured by verdict, with the RTO target as a dashed line. */
export function rtoChart(w: PdfWriter, s: RtoSeries, height = 120): void {
  const doc = w.doc;
  w.ensure(height + 34);
  const longest = Math.max(0, ...s.points.map((p) => p.totalMs));
  // a target far above every drill would flatten the bars: then it is named, not drawn
  const targetShown = s.targetMs !== undefined && s.targetMs <= longest * 4;
  let target = " (no RTO target)";
  if (s.targetMs !== undefined) {
    const share = longest > 0 ? Math.max(1, Math.round((longest / s.targetMs) * 100)) : 0;
    target = targetShown
      ? ` (RTO target ${formatDuration(s.targetMs)})`
      : ` (RTO target ${formatDuration(s.targetMs)}, off the scale: the longest drill took ${share}% of it)`;
  }
  const title = `${s.series ? `${s.source}/${s.series}` : s.source}: restore time per drill${target}`;
  doc
    .font(FONT.bold)
    .fontSize(9)
    .fillColor(COLORS.text)
    .text(pdfText(title), w.left, w.y, { width: w.width, lineBreak: false, ellipsis: true, height: 11 });
  const top = w.y + 8;
  const x0 = w.left + 44;
  const x1 = w.right - 18;
  const y1 = top + height;
  if (s.points.length === 0) {
    doc
      .font(FONT.regular)
      .fontSize(8.5)
      .fillColor(COLORS.muted)
      .text("No drill with a recorded restore time.", x0, top, { lineBreak: false });
    w.y = top + 16;
    return;
  }
  const max = Math.max(longest, targetShown ? s.targetMs! : 0) * 1.15 || 1000;
  const unit = durationUnit(max);
  const step = niceStep(max / unit.ms) * unit.ms;
  const yMax = Math.ceil(max / step) * step;
  const yOf = (ms: number) => y1 - (ms / yMax) * height;

  doc.lineWidth(0.4).strokeColor(COLORS.rule);
  doc.font(FONT.regular).fontSize(7).fillColor(COLORS.muted);
  // one unit for the whole axis, named once above it
  doc.text(unit.name, w.left, top - 9, { width: 40, align: "right", lineBreak: false });
  for (let k = 0; k * step <= yMax + 1; k++) {
    const y = yOf(k * step);
    doc.moveTo(x0, y).lineTo(x1, y).stroke();
    doc.text(inUnit(k * step, unit.ms), w.left, y - 3.5, { width: 40, align: "right", lineBreak: false });
  }

  const slot = (x1 - x0) / s.points.length;
  const barW = Math.max(2, Math.min(22, slot * 0.7));
  s.points.forEach((p, i) => {
    const x = x0 + slot * i + (slot - barW) / 2;
    const y = yOf(p.totalMs);
    doc.rect(x, y, barW, y1 - y).fill(colorOf(p.verdict));
    if (s.points.length <= 16) {
      doc.font(FONT.regular).fontSize(6.5).fillColor(COLORS.muted);
      doc.text(inUnit(p.totalMs, unit.ms), x + barW / 2 - 25, y - 8, {
        width: 50,
        align: "center",
        lineBreak: false,
      });
    }
  });

  if (s.targetMs !== undefined && targetShown) {
    const y = yOf(s.targetMs);
    doc
      .save()
      .moveTo(x0, y)
      .lineTo(x1, y)
      .lineWidth(1.2)
      .dash(5, { space: 3 })
      .strokeColor(COLORS.fail)
      .stroke()
      .undash()
      .restore();
    // the label sits right of the plot, where no bar can cover it
    doc
      .font(FONT.bold)
      .fontSize(7)
      .fillColor(COLORS.fail)
      .text("RTO", x1 + 1, y - 3.5, { width: 30, lineBreak: false });
  }

  // date and time of day (UTC) under the first, middle and last bar
  doc.font(FONT.regular).fontSize(7).fillColor(COLORS.muted);
  const labelled = [...new Set([0, Math.floor((s.points.length - 1) / 2), s.points.length - 1])];
  for (const i of labelled) {
    const cx = x0 + slot * i + slot / 2;
    doc.text(`${axisTime(s.points[i]!.at)} UTC`, cx - 40, y1 + 3, {
      width: 80,
      align: "center",
      lineBreak: false,
    });
  }
  doc.moveTo(x0, y1).lineTo(x1, y1).lineWidth(0.8).strokeColor(COLORS.muted).stroke();
  w.y = y1 + 14;
  legend(w, [
    ["pass", COLORS.pass],
    ["warn", COLORS.warn],
    ["fail", COLORS.fail],
    ["error", COLORS.error],
  ]);
}
