/**
 * The append-only history CSV. Each row carries the hash of the previous row and its own,
 * so an edited, inserted or removed row breaks the chain (`attest history verify`).
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { Parser } from "@json2csv/plainjs";
import { redact } from "../util/redact.js";
import { HISTORY_COLUMNS, type HistoryColumn, type HistoryRecord } from "./history-record.js";

/** The hash of the empty chain (what the first row's prevHash holds). */
export const GENESIS_HASH = "0".repeat(64);

/** Hash of one row: sha256 over prevHash and every other column, unambiguously joined. */
export function rowHash(row: HistoryRecord): string {
  const h = createHash("sha256");
  for (const c of HISTORY_COLUMNS) {
    if (c === "hash") continue;
    const v = row[c] ?? "";
    h.update(`${v.length}:${v}\n`);
  }
  return h.digest("hex");
}

/** Columns that hold numbers: `-1` there is a number, never a formula, and stays as it is. */
const NUMERIC_COLUMNS: ReadonlySet<HistoryColumn> = new Set([
  "sizeBytes",
  "provisionMs",
  "restoreMs",
  "recoveryMs",
  "checksMs",
  "teardownMs",
  "totalMs",
  "measuredRpoSeconds",
  "reachedTimeline",
]);

/** Columns of free text, where an error message (and so a secret it echoes) can land. */
const FREE_TEXT_COLUMNS: ReadonlySet<HistoryColumn> = new Set([
  "reason",
  "message",
  "evidence",
  "checks",
  "target",
]);

// a spreadsheet reads a cell starting with = + - @ (or tab/CR before them) as a formula: such a
// text cell is written with a leading ' (the OWASP rule). A value that already starts with
// quotes before one of those gets one more, so reading back (strip one ') is exact.
const FORMULA_START = /^'*[=+\-@\t\r]/;

/** The cell as written to the file: text that a spreadsheet would evaluate gets a leading '. */
export function escapeCell(column: HistoryColumn, value: string): string {
  return !NUMERIC_COLUMNS.has(column) && FORMULA_START.test(value) ? `'${value}` : value;
}

/** The value a written cell stands for (undoes escapeCell). */
export function unescapeCell(column: HistoryColumn, cell: string): string {
  return !NUMERIC_COLUMNS.has(column) && cell.startsWith("'") && FORMULA_START.test(cell.slice(1))
    ? cell.slice(1)
    : cell;
}

const escapeRow = (row: HistoryRecord): HistoryRecord =>
  Object.fromEntries(HISTORY_COLUMNS.map((c) => [c, escapeCell(c, row[c] ?? "")])) as HistoryRecord;

const parser = new Parser<HistoryRecord, HistoryRecord>({
  fields: [...HISTORY_COLUMNS],
  header: false,
  eol: "\n",
});
const headerLine = `${HISTORY_COLUMNS.map((c) => `"${c}"`).join(",")}\n`;

/** Parses CSV text as json2csv writes it (quoted fields, "" escapes, embedded newlines). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += ch;
      i++;
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(field);
      field = "";
    } else if (ch === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else if (ch !== "\r") field += ch;
    i++;
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Result of verifying the chain. */
export interface ChainVerdict {
  ok: boolean;
  rows: number;
  /** Hash of the last row (the chain's head). */
  head: string;
  problem?: string;
}

/** The history file. */
export class HistoryStore {
  constructor(readonly path: string) {}

  /** Reads every row; throws when the file is not a history file. */
  read(): HistoryRecord[] {
    if (!existsSync(this.path)) return [];
    const rows = parseCsv(readFileSync(this.path, "utf8"));
    const header = rows.shift();
    if (!header) return [];
    if (header.join(",") !== HISTORY_COLUMNS.join(",")) {
      throw new Error(`${this.path}: not an Attest history file (unexpected header)`);
    }
    return rows.map(
      (cells) =>
        Object.fromEntries(
          HISTORY_COLUMNS.map((c, i) => [c, unescapeCell(c, cells[i] ?? "")]),
        ) as HistoryRecord,
    );
  }

  /** Verifies every row's hash and link. */
  verify(): ChainVerdict {
    let records: HistoryRecord[];
    try {
      records = this.read();
    } catch (err) {
      return { ok: false, rows: 0, head: GENESIS_HASH, problem: (err as Error).message };
    }
    let prev = GENESIS_HASH;
    for (const [i, r] of records.entries()) {
      const line = `row ${i + 1}`;
      if (r.prevHash !== prev) {
        return {
          ok: false,
          rows: records.length,
          head: prev,
          problem: `${line} (${r.recordType} ${r.runId}): previous-hash link broken — a row before it was removed, inserted or edited`,
        };
      }
      if (rowHash(r) !== r.hash) {
        return {
          ok: false,
          rows: records.length,
          head: prev,
          problem: `${line} (${r.recordType} ${r.runId}): content does not match its hash — the row was edited`,
        };
      }
      prev = r.hash;
    }
    return { ok: true, rows: records.length, head: prev };
  }

  /** The chain head (hash of the last row), or the genesis hash of an empty history. */
  head(): string {
    const rows = this.read();
    return rows.at(-1)?.hash ?? GENESIS_HASH;
  }

  /**
   * Appends rows, linking them to the current head. A crash mid-write leaves at most a torn
   * last line, which the next append cuts off before writing (the chain stays verifiable).
   */
  append(rows: HistoryRecord[]): string {
    mkdirSync(dirname(this.path), { recursive: true });
    const fd = openSync(this.path, existsSync(this.path) ? "r+" : "w+", 0o640);
    try {
      this.#repairTornTail(fd);
      let prev = this.head();
      let text = fstatSync(fd).size === 0 ? headerLine : "";
      for (const r of rows) {
        // a secret that reached a reason or message (a store echoing its request) is masked
        // before the row is hashed and stored: history is kept for years and exported
        // (free-text columns only: a short secret must never mask a date or number policies parse)
        const row = Object.fromEntries(
          HISTORY_COLUMNS.map((c) => [c, FREE_TEXT_COLUMNS.has(c) ? redact(r[c] ?? "") : (r[c] ?? "")]),
        ) as HistoryRecord;
        row.prevHash = prev;
        row.hash = rowHash(row);
        prev = row.hash;
        text += `${parser.parse([escapeRow(row)])}\n`;
      }
      writeSync(fd, text, fstatSync(fd).size);
      fsyncSync(fd);
      return prev;
    } finally {
      closeSync(fd);
    }
  }

  #repairTornTail(fd: number): void {
    const size = fstatSync(fd).size;
    if (size === 0) return;
    const text = readFileSync(this.path, "utf8");
    // never cut into a file that is not ours
    if (!text.startsWith(headerLine))
      throw new Error(`${this.path}: not an Attest history file (unexpected header)`);
    if (text.endsWith("\n")) {
      // a complete last line can still be torn inside a quoted field: re-parse to be sure
      const rows = parseCsv(text);
      if (rows.every((r) => r.length === HISTORY_COLUMNS.length)) return;
    }
    const lastGood = lastCompleteRowEnd(text);
    ftruncateSync(fd, Buffer.byteLength(text.slice(0, lastGood)));
  }
}

function lastCompleteRowEnd(text: string): number {
  let end = 0;
  let quoted = false;
  let fields = 1;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === ",") fields++;
    else if (!quoted && ch === "\n") {
      if (fields === HISTORY_COLUMNS.length) end = i + 1;
      fields = 1;
    }
  }
  return end;
}
