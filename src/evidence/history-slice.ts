/**
 * The part of the history a bundle carries: the rows of the period and every row after them
 * up to the head. Each row's hash covers its content and the previous hash, so a verifier
 * needs the full later rows (not only their hashes) to walk from the period to the head.
 */
import { HISTORY_COLUMNS, type HistoryRecord } from "../history/history-record.js";
import { escapeCell, GENESIS_HASH, parseCsv, rowHash, unescapeCell } from "../history/history-store.js";

/** Where the carried rows sit in the whole history. */
export interface SliceInfo {
  /** 1-based number of the first carried row in the history file (rows after the header). */
  firstRow: number;
  /** How many carried rows, from the first, were recorded in the period. */
  periodRows: number;
  /** How many carried rows follow the period up to the head. */
  linkRows: number;
  /** The previous hash of the first carried row (the head when no row is carried). */
  anchor: string;
  /** Hash of the history's last row when the bundle was made. */
  head: string;
}

/** The carried rows and where they sit. */
export interface HistorySlice {
  rows: HistoryRecord[];
  info: SliceInfo;
}

/** Cuts the rows recorded in [from, to] and the links after them out of the whole history. */
export function sliceHistory(history: readonly HistoryRecord[], from: Date, to: Date): HistorySlice {
  const at = (r: HistoryRecord) => Date.parse(r.recordedAt);
  let first = history.findIndex((r) => at(r) >= from.getTime());
  if (first === -1) first = history.length;
  const rows = history.slice(first);
  let periodRows = 0;
  while (periodRows < rows.length && at(rows[periodRows]!) <= to.getTime()) periodRows++;
  const head = history.at(-1)?.hash ?? GENESIS_HASH;
  return {
    rows,
    info: {
      firstRow: first + 1,
      periodRows,
      linkRows: rows.length - periodRows,
      anchor: rows[0]?.prevHash ?? head,
      head,
    },
  };
}

const quote = (v: string) => `"${v.replace(/"/g, '""')}"`;

/** The rows as CSV text with the history's own header, readable by `parseCsv`. */
export function sliceCsv(rows: readonly HistoryRecord[]): string {
  const lines = [HISTORY_COLUMNS.map(quote).join(",")];
  // the same ' before formula-like text as history.csv: the slice is opened in spreadsheets too
  for (const r of rows) lines.push(HISTORY_COLUMNS.map((c) => quote(escapeCell(c, r[c] ?? ""))).join(","));
  return `${lines.join("\n")}\n`;
}

/** Parses carried rows; throws when the header is not the history's. */
export function parseSliceCsv(text: string): HistoryRecord[] {
  const rows = parseCsv(text);
  const header = rows.shift();
  if (!header || header.join(",") !== HISTORY_COLUMNS.join(","))
    throw new Error("not Attest history rows (unexpected header)");
  return rows.map((cells, i) => {
    if (cells.length !== HISTORY_COLUMNS.length)
      throw new Error(`row ${i + 1} has ${cells.length} fields, not ${HISTORY_COLUMNS.length}`);
    return Object.fromEntries(
      HISTORY_COLUMNS.map((c, k) => [c, unescapeCell(c, cells[k] ?? "")]),
    ) as HistoryRecord;
  });
}

/**
 * Walks the carried rows from the anchor to the head; returns the first thing that does not
 * hold, naming the row by its number in the whole history, or undefined when the chain holds.
 */
export function checkSlice(rows: readonly HistoryRecord[], info: SliceInfo): string | undefined {
  if (rows.length !== info.periodRows + info.linkRows)
    return `history: the bundle carries ${rows.length} rows, the manifest says ${info.periodRows + info.linkRows}`;
  let prev = info.anchor;
  for (const [i, r] of rows.entries()) {
    const n = info.firstRow + i;
    if (r.prevHash !== prev)
      return `history row ${n}: chain link broken (a row before it was removed, inserted or edited)`;
    if (rowHash(r) !== r.hash)
      return `history row ${n}: content does not match its hash (the row was edited)`;
    prev = r.hash;
  }
  if (prev !== info.head)
    return `history: the rows end at ${prev}, not at the head the manifest names (${info.head})`;
  return undefined;
}
