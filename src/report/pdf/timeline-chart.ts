/** Backups on a time axis against the retention window (min_days shaded, max_days dashed). */
import type { BackupTimeline } from "../report-model.js";
import { legend } from "./chart-parts.js";
import { axisTime, COLORS, FONT, pdfText } from "./pdf-style.js";
import type { PdfWriter } from "./pdf-writer.js";

const DAY = 86_400_000;

/**
 * One row per series: each backup a dot on a time axis (green verified, grey not, red past
 * max_days), the recovery window (min_days) shaded, the max_days limit as a dashed line.
 */
export function timelineChart(
  w: PdfWriter,
  timelines: readonly BackupTimeline[],
  anchorIso: string,
  /** When given, the axis spans exactly from here to the anchor (a report's period). */
  fromIso?: string,
): void {
  const doc = w.doc;
  const now = Date.parse(anchorIso);
  const fixed = fromIso === undefined ? undefined : Date.parse(fromIso);
  const rowH = 17;
  const labelW = 120;
  const x0 = w.left + labelW;
  const x1 = w.right - 8;
  let start = now - 14 * DAY;
  for (const t of timelines) {
    for (const b of t.backups) start = Math.min(start, Date.parse(b.at));
    const reach = Math.max(t.maxDays ?? 0, t.minDays ?? 0) * DAY;
    if (reach) start = Math.min(start, now - reach * 1.1);
  }
  start = Math.max(start, now - 400 * DAY);
  if (fixed !== undefined && Number.isFinite(fixed)) start = fixed;
  const end = now + (now - start) * 0.02;
  // outside the axis a dot would pile up at its edge and look like a backup taken there
  const shown = (at: number) => at >= start && at <= end;
  const xOf = (ms: number) => x0 + ((Math.max(ms, start) - start) / (end - start)) * (x1 - x0);

  let i = 0;
  while (i < timelines.length) {
    // as many rows as fit on this page, at least one
    w.ensure(rowH + 46);
    const fit = Math.max(1, Math.floor((w.bottom - w.y - 46) / rowH));
    const chunk = timelines.slice(i, i + fit);
    const top = w.y + 2;
    const y1 = top + chunk.length * rowH;
    chunk.forEach((t, k) => {
      const y = top + k * rowH;
      const mid = y + rowH / 2;
      if (k % 2 === 1) doc.rect(w.left, y, w.width, rowH).fill(COLORS.zebra);
      if (t.minDays)
        doc
          .rect(xOf(now - t.minDays * DAY), y + 2, xOf(now) - xOf(now - t.minDays * DAY), rowH - 4)
          .fill("#dcedc8");
      doc.moveTo(x0, mid).lineTo(x1, mid).lineWidth(0.4).strokeColor(COLORS.rule).stroke();
      const limit = t.maxDays !== undefined ? now - t.maxDays * DAY : undefined;
      if (limit !== undefined && limit > start) {
        doc
          .save()
          .moveTo(xOf(limit), y + 1)
          .lineTo(xOf(limit), y + rowH - 1)
          .lineWidth(1.1)
          .dash(2.5, { space: 2 })
          .strokeColor(COLORS.fail)
          .stroke()
          .undash()
          .restore();
      }
      for (const b of t.backups) {
        const at = Date.parse(b.at);
        if (!shown(at)) continue;
        const color = limit !== undefined && at < limit ? COLORS.fail : b.verified ? COLORS.pass : "#9e9e9e";
        doc.circle(xOf(at), mid, 2.4).fill(color);
      }
      const name = t.series ? `${t.source}/${t.series}` : t.source;
      doc
        .font(FONT.regular)
        .fontSize(7.5)
        .fillColor(COLORS.text)
        .text(pdfText(name), w.left + 2, mid - 3.5, {
          width: labelW - 8,
          lineBreak: false,
          ellipsis: true,
          height: 9,
        });
    });
    // the "now" line and a date axis
    doc
      .save()
      .moveTo(xOf(now), top)
      .lineTo(xOf(now), y1)
      .lineWidth(0.8)
      .strokeColor(COLORS.accent)
      .stroke()
      .restore();
    doc.moveTo(x0, y1).lineTo(x1, y1).lineWidth(0.8).strokeColor(COLORS.muted).stroke();
    doc.font(FONT.regular).fontSize(7).fillColor(COLORS.muted);
    for (let k = 0; k <= 4; k++) {
      const t = start + ((now - start) * k) / 4;
      doc
        .moveTo(xOf(t), y1)
        .lineTo(xOf(t), y1 + 3)
        .stroke();
      doc.text(axisTime(new Date(t).toISOString()), xOf(t) - 30, y1 + 5, {
        width: 60,
        align: "center",
        lineBreak: false,
      });
    }
    doc.text("UTC", x1 - 20, y1 + 13, { width: 28, align: "right", lineBreak: false });
    w.y = y1 + 22;
    i += chunk.length;
  }
  legend(
    w,
    [
      ["verified by a passing drill", COLORS.pass, "dot"],
      ["not verified", "#9e9e9e", "dot"],
      ["past max_days", COLORS.fail, "dot"],
      ["recovery window (min_days)", "#dcedc8"],
      ["max_days limit", COLORS.fail, "line"],
    ],
    0,
  );
}
