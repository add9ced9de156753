/** Pieces the charts share: the legend line, and the stacked bar of a drill's phases. */
import type { Timings } from "../../model.js";
import { formatDuration } from "../../util/duration.js";
import { COLORS, FONT, pdfText } from "./pdf-style.js";
import type { PdfWriter } from "./pdf-writer.js";

/** One legend entry: name, colour, marker shape. */
export type LegendItem = [name: string, color: string, shape?: "box" | "dot" | "line"];

/** A legend line under a chart. */
export function legend(w: PdfWriter, items: readonly LegendItem[], indent = 44): void {
  const doc = w.doc;
  let x = w.left + indent;
  const y = w.y + 1;
  doc.font(FONT.regular).fontSize(7).fillColor(COLORS.muted);
  for (const [name, color, shape = "box"] of items) {
    if (shape === "dot") doc.circle(x + 3, y + 3.5, 2.6).fill(color);
    else if (shape === "line")
      doc
        .save()
        .moveTo(x, y + 3.5)
        .lineTo(x + 10, y + 3.5)
        .lineWidth(1.2)
        .dash(3, { space: 2 })
        .strokeColor(color)
        .stroke()
        .undash()
        .restore();
    else doc.rect(x, y, 7, 7).fill(color);
    const tx = x + (shape === "line" ? 13 : 10);
    doc.fillColor(COLORS.muted).text(pdfText(name), tx, y, { lineBreak: false });
    x = tx + doc.widthOfString(pdfText(name)) + 12;
  }
  w.y = y + 14;
}

const PHASES: ReadonlyArray<[keyof Timings, string, string]> = [
  ["provisionMs", "provision", "#90a4ae"],
  ["restoreMs", "restore", "#1f4e79"],
  ["recoveryMs", "recovery", "#5c6bc0"],
  ["checksMs", "checks", "#26a69a"],
  ["teardownMs", "teardown", "#bcaaa4"],
];

/** A stacked bar of a drill's phases, with a legend giving each phase's time. */
export function phaseBar(w: PdfWriter, t: Timings): void {
  const doc = w.doc;
  w.ensure(34);
  const total = PHASES.reduce((a, [k]) => a + Math.max(0, t[k]), 0);
  const y = w.y + 2;
  if (total <= 0) return;
  let x = w.left;
  for (const [k, , color] of PHASES) {
    const part = (Math.max(0, t[k]) / total) * w.width;
    if (part > 0) doc.rect(x, y, part, 10).fill(color);
    x += part;
  }
  w.y = y + 14;
  legend(
    w,
    PHASES.filter(([k]) => t[k] > 0).map(
      ([k, name, color]): LegendItem => [`${name} ${formatDuration(t[k])}`, color],
    ),
    0,
  );
}
