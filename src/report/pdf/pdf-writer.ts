/**
 * A small layout layer over pdfkit: flowing headings and paragraphs, key/value blocks, and tables
 * that wrap cells, repeat their header on each page and never run past the bottom margin.
 */
import { createWriteStream } from "node:fs";
import PDFDocument from "pdfkit";
import { COLORS, FONT, pdfText } from "./pdf-style.js";

/** A table cell: text, or text with a colour / bold / fill. */
export type Cell =
  | string
  | { text: string; color?: string; bold?: boolean; fill?: string; mono?: boolean; size?: number };

/** A table column. */
export interface Column {
  header: string;
  /** Share of the table width (all shares are normalised). */
  width: number;
  align?: "left" | "right" | "center";
}

/** Options of a table. */
export interface TableOptions {
  fontSize?: number;
  /** Rows taller than this are cut with an ellipsis (points). */
  maxRowHeight?: number;
  zebra?: boolean;
}

const PAD = 3;

/** A PDF being written, top to bottom. */
export class PdfWriter {
  readonly doc: PDFKit.PDFDocument;
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
  readonly width: number;
  #footer: (page: number, pages: number) => string = () => "";

  constructor(info: { title: string; author: string; subject: string }) {
    this.doc = new PDFDocument({
      size: "A4",
      margins: { top: 50, bottom: 56, left: 50, right: 50 },
      bufferPages: true,
      autoFirstPage: true,
      info: {
        Title: pdfText(info.title),
        Author: pdfText(info.author),
        Subject: pdfText(info.subject),
        Creator: "Attest",
      },
    });
    const p = this.doc.page;
    this.left = p.margins.left;
    this.right = p.width - p.margins.right;
    this.top = p.margins.top;
    this.bottom = p.height - p.margins.bottom;
    this.width = this.right - this.left;
    this.doc.font(FONT.regular).fontSize(10).fillColor(COLORS.text);
  }

  /** The current vertical position. */
  get y(): number {
    return this.doc.y;
  }

  set y(v: number) {
    this.doc.y = v;
  }

  /** Sets the text each page's footer shows. */
  footer(fn: (page: number, pages: number) => string): void {
    this.#footer = fn;
  }

  /** Starts a new page. */
  newPage(): void {
    this.doc.addPage();
    this.doc.x = this.left;
    this.doc.y = this.top;
  }

  /** Starts a new page unless `h` points still fit on this one. */
  ensure(h: number): void {
    if (this.doc.y + h > this.bottom) this.newPage();
  }

  /** Space below. */
  gap(h = 8): void {
    this.doc.y += h;
  }

  /** A section heading (level 1 is larger and underlined), kept on one page with `keep` points after it. */
  heading(text: string, level: 1 | 2 | 3 = 1, keep = 20): void {
    const size = level === 1 ? 15 : level === 2 ? 12 : 10.5;
    this.ensure(size * 2.5 + keep);
    if (this.doc.y > this.top + 1) this.gap(level === 1 ? 8 : 5);
    this.doc
      .font(FONT.bold)
      .fontSize(size)
      .fillColor(level === 1 ? COLORS.accent : COLORS.text);
    this.doc.text(pdfText(text), this.left, this.doc.y, { width: this.width });
    if (level === 1) {
      const y = this.doc.y + 1;
      this.doc.moveTo(this.left, y).lineTo(this.right, y).lineWidth(0.8).strokeColor(COLORS.accent).stroke();
      this.doc.y = y + 5;
    } else this.gap(2);
    this.doc.font(FONT.regular).fontSize(10).fillColor(COLORS.text);
  }

  /** A paragraph that flows across pages line by line. */
  paragraph(
    text: string,
    opts: { size?: number; color?: string; bold?: boolean; mono?: boolean } = {},
  ): void {
    const size = opts.size ?? 10;
    this.doc
      .font(opts.mono ? FONT.mono : opts.bold ? FONT.bold : FONT.regular)
      .fontSize(size)
      .fillColor(opts.color ?? COLORS.text);
    for (const line of pdfText(text).split("\n")) {
      // by line, so a long paragraph breaks between lines, never past the margin
      const h = this.doc.heightOfString(line || " ", { width: this.width });
      if (h > this.bottom - this.top) {
        this.#longLine(line, size);
        continue;
      }
      this.ensure(h);
      this.doc.text(line || " ", this.left, this.doc.y, { width: this.width });
    }
    this.doc.font(FONT.regular).fontSize(10).fillColor(COLORS.text);
  }

  #longLine(line: string, size: number): void {
    const words = line.split(" ");
    let chunk = "";
    for (const w of words) {
      const next = chunk ? `${chunk} ${w}` : w;
      if (this.doc.heightOfString(next, { width: this.width }) > size * 20) {
        this.ensure(this.doc.heightOfString(chunk, { width: this.width }));
        this.doc.text(chunk, this.left, this.doc.y, { width: this.width });
        chunk = w;
      } else chunk = next;
    }
    if (chunk) {
      this.ensure(this.doc.heightOfString(chunk, { width: this.width }));
      this.doc.text(chunk, this.left, this.doc.y, { width: this.width });
    }
  }

  /** Label/value lines in two columns. */
  keyValues(rows: ReadonlyArray<[string, Cell]>, keyWidth = 130, size = 9.5): void {
    const valueWidth = this.width - keyWidth;
    for (const [k, v] of rows) {
      const cell = typeof v === "string" ? { text: v } : v;
      const text = pdfText(cell.text || "-");
      const valueSize = cell.size ?? (cell.mono ? size - 1 : size);
      this.doc.font(cell.mono ? FONT.mono : cell.bold ? FONT.bold : FONT.regular).fontSize(valueSize);
      const h = Math.min(this.doc.heightOfString(text, { width: valueWidth }), 12 * size);
      this.ensure(h + 2);
      const y = this.doc.y;
      this.doc
        .font(FONT.bold)
        .fontSize(size)
        .fillColor(COLORS.muted)
        .text(pdfText(k), this.left, y, { width: keyWidth - 6, height: h + 1, ellipsis: true });
      this.doc
        .font(cell.mono ? FONT.mono : cell.bold ? FONT.bold : FONT.regular)
        .fontSize(valueSize)
        .fillColor(cell.color ?? COLORS.text)
        .text(text, this.left + keyWidth, y + (size - valueSize) / 2, {
          width: valueWidth,
          height: h + 1,
          ellipsis: true,
        });
      this.doc.y = y + h + 2;
    }
    this.doc.font(FONT.regular).fontSize(10).fillColor(COLORS.text);
  }

  /** A table; rows that do not fit move to the next page under a repeated header. */
  table(columns: readonly Column[], rows: readonly Cell[][], opts: TableOptions = {}): void {
    const size = opts.fontSize ?? 8.5;
    const maxRow = opts.maxRowHeight ?? 160;
    const total = columns.reduce((a, c) => a + c.width, 0);
    const widths = columns.map((c) => (c.width / total) * this.width);
    const xs = widths.map((_, i) => this.left + widths.slice(0, i).reduce((a, w) => a + w, 0));
    const cellOf = (c: Cell) => (typeof c === "string" ? { text: c } : c);
    const fontOf = (c: { bold?: boolean; mono?: boolean }) =>
      c.mono ? FONT.mono : c.bold ? FONT.bold : FONT.regular;

    const measure = (cells: readonly Cell[], header = false) =>
      Math.min(
        maxRow,
        Math.max(
          ...cells.map((raw, i) => {
            const c = cellOf(raw);
            this.doc.font(header ? FONT.bold : fontOf(c)).fontSize(c.mono ? size - 1 : size);
            return this.doc.heightOfString(pdfText(c.text || " "), { width: widths[i]! - 2 * PAD });
          }),
        ) +
          2 * PAD,
      );

    const drawRow = (cells: readonly Cell[], h: number, header: boolean, zebra: boolean) => {
      const y = this.doc.y;
      if (header) this.doc.rect(this.left, y, this.width, h).fill(COLORS.headerFill);
      else if (zebra) this.doc.rect(this.left, y, this.width, h).fill(COLORS.zebra);
      cells.forEach((raw, i) => {
        const c = cellOf(raw);
        if (c.fill) this.doc.rect(xs[i]!, y, widths[i]!, h).fill(c.fill);
        this.doc
          .font(header ? FONT.bold : fontOf(c))
          .fontSize(c.mono ? size - 1 : size)
          .fillColor(c.color ?? COLORS.text)
          .text(pdfText(c.text || ""), xs[i]! + PAD, y + PAD, {
            width: widths[i]! - 2 * PAD,
            height: h - 2 * PAD + 0.5,
            ellipsis: true,
            align: columns[i]!.align ?? "left",
          });
      });
      this.doc
        .moveTo(this.left, y + h)
        .lineTo(this.right, y + h)
        .lineWidth(0.4)
        .strokeColor(COLORS.rule)
        .stroke();
      this.doc.y = y + h;
    };

    const header = columns.map((c) => c.header);
    const headerH = measure(header, true);
    this.ensure(headerH + measure(rows[0] ?? header));
    drawRow(header, headerH, true, false);
    rows.forEach((r, k) => {
      const h = measure(r);
      if (this.doc.y + h > this.bottom) {
        this.newPage();
        drawRow(header, headerH, true, false);
      }
      drawRow(r, h, false, Boolean(opts.zebra) && k % 2 === 1);
    });
    this.doc.font(FONT.regular).fontSize(10).fillColor(COLORS.text);
    this.doc.x = this.left;
    this.gap(6);
  }

  /** Writes footers on every page and the file to disk. */
  async save(file: string): Promise<void> {
    const range = this.doc.bufferedPageRange();
    for (let i = range.start; i < range.start + range.count; i++) {
      this.doc.switchToPage(i);
      const page = this.doc.page;
      const bottomMargin = page.margins.bottom;
      // writing inside the bottom margin must not start a new page
      page.margins.bottom = 0;
      const y = page.height - 36;
      this.doc
        .moveTo(this.left, y - 4)
        .lineTo(this.right, y - 4)
        .lineWidth(0.4)
        .strokeColor(COLORS.rule)
        .stroke();
      this.doc
        .font(FONT.regular)
        .fontSize(7.5)
        .fillColor(COLORS.muted)
        .text(pdfText(this.#footer(i + 1, range.count)), this.left, y, {
          width: this.width,
          lineBreak: false,
          ellipsis: true,
          height: 10,
        });
      page.margins.bottom = bottomMargin;
    }
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(file);
      out.on("finish", resolve);
      out.on("error", reject);
      this.doc.pipe(out);
      this.doc.end();
    });
  }
}
