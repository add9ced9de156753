/** The PDF section of control mapping: per framework, per control, its status and the evidence behind it. */
import { COLORS } from "../pdf/pdf-style.js";
import type { Cell, PdfWriter } from "../pdf/pdf-writer.js";
import { controlLabel, type FrameworkSection } from "./control-mapping.js";
import type { ControlStatus } from "./evidence-kinds.js";

const TONE: Record<ControlStatus, string> = {
  met: COLORS.pass,
  "not-met": COLORS.fail,
  "no-evidence": COLORS["no-evidence"],
};

/** History row numbers as ranges: "3-7, 12". */
export function rowRanges(rows: readonly number[], max = 12): string {
  const parts: string[] = [];
  let start = rows[0];
  let prev = rows[0];
  const flush = () => {
    if (start !== undefined && prev !== undefined)
      parts.push(start === prev ? `${start}` : `${start}-${prev}`);
  };
  for (const n of rows.slice(1)) {
    if (prev !== undefined && n === prev + 1) prev = n;
    else {
      flush();
      start = n;
      prev = n;
    }
  }
  flush();
  if (parts.length === 0) return "-";
  return parts.length > max ? `${parts.slice(0, max).join(", ")}, … (${rows.length} rows)` : parts.join(", ");
}

const statusCell = (s: ControlStatus): Cell => ({ text: controlLabel(s), color: TONE[s], bold: true });

/** Renders the control sections, one framework after another. */
export function controlsSection(w: PdfWriter, sections: readonly FrameworkSection[]): void {
  w.newPage();
  w.heading("Control mapping", 1, 60);
  w.paragraph(
    "Each control below is summarised in Attest's own words, with the evidence Attest holds for the period. MET: every kind of evidence the control rests on holds. NOT MET: at least one contradicts it. NO EVIDENCE: nothing in the period proves one of them. Rows are line numbers of the history file (as attest history verify counts them), so each claim can be traced to a hash-chained record.",
    { size: 9, color: COLORS.muted },
  );
  for (const f of sections) {
    w.heading(f.name, 2, 60);
    for (const c of f.controls) {
      w.heading(`${c.id}  ${c.title}`, 3, 50);
      w.paragraph(c.asks, { size: 9, color: COLORS.muted });
      w.keyValues([
        ["Status", statusCell(c.status)],
        ["History rows", rowRanges(c.rows)],
      ]);
      w.table(
        [
          { header: "Evidence", width: 22 },
          { header: "Status", width: 15 },
          { header: "What the period shows", width: 45 },
          { header: "History rows", width: 18 },
        ],
        c.evidence.map((e) => [e.label, statusCell(e.status), e.detail, rowRanges(e.rows, 6)]),
        { fontSize: 8.5, zebra: true },
      );
    }
  }
}
