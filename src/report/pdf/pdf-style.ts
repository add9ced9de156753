/** Colours, fonts and text clean-up shared by the PDF pages and charts. */
import type { Verdict } from "../../model.js";
import type { RuleState } from "../../policy/series-status.js";
import type { ReportStatus } from "../cover-status.js";

/** Colours of verdicts and states. */
export const COLORS = {
  pass: "#2e7d32",
  warn: "#b26a00",
  fail: "#c62828",
  error: "#546e7a",
  critical: "#c62828",
  warning: "#b26a00",
  ok: "#2e7d32",
  "n/a": "#9e9e9e",
  unverified: "#b26a00",
  "no-evidence": "#6a1b9a",
  text: "#212121",
  muted: "#616161",
  rule: "#bdbdbd",
  headerFill: "#eceff1",
  zebra: "#f6f6f6",
  accent: "#1f4e79",
} as const;

/** The colour of a verdict or rule state. */
export function colorOf(v: Verdict | RuleState | ReportStatus): string {
  return (COLORS as Record<string, string>)[v] ?? COLORS.text;
}

/** Fonts (the standard 14: always available, text stays extractable). */
export const FONT = { regular: "Helvetica", bold: "Helvetica-Bold", mono: "Courier" } as const;

const REPLACEMENTS: Record<string, string> = {
  "\u2192": "->",
  "\u2190": "<-",
  "\u2265": ">=",
  "\u2264": "<=",
  "\u2260": "!=",
  "\u2248": "~",
  "\u00a0": " ",
  "\u2009": " ",
  "\u202f": " ",
};
// characters the standard fonts' WinAnsi encoding holds beyond Latin-1
const WIN_ANSI_EXTRA = new Set([
  ..."\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u017d\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u017e\u0178",
]);

/** Text the standard fonts can draw: known symbols spelled out, anything else as "?". */
export function pdfText(s: string): string {
  let out = "";
  for (const ch of s) {
    const r = REPLACEMENTS[ch];
    if (r !== undefined) out += r;
    else if (ch === "\n") out += ch;
    else if (ch === "\t") out += "  ";
    else {
      const c = ch.codePointAt(0)!;
      out += (c >= 0x20 && c < 0x7f) || (c >= 0xa0 && c <= 0xff) || WIN_ANSI_EXTRA.has(ch) ? ch : "?";
    }
  }
  return out;
}

/** `2025-03-10 12:00 UTC` from ISO text (the input itself when it is not a time). */
export function shortTime(isoText: string | undefined): string {
  if (!isoText) return "-";
  const t = Date.parse(isoText);
  return Number.isFinite(t) ? `${new Date(t).toISOString().slice(0, 16).replace("T", " ")} UTC` : isoText;
}

/** `2025-03-10` from ISO text. */
export function shortDate(isoText: string | undefined): string {
  if (!isoText) return "-";
  const t = Date.parse(isoText);
  return Number.isFinite(t) ? new Date(t).toISOString().slice(0, 10) : isoText;
}

/** `03-10 12:00` from ISO text: a chart axis label with its time of day (UTC). */
export function axisTime(isoText: string | undefined): string {
  if (!isoText) return "-";
  const t = Date.parse(isoText);
  return Number.isFinite(t) ? new Date(t).toISOString().slice(5, 16).replace("T", " ") : isoText;
}

/** `2025-03-10 12:00` (for columns whose header says UTC). */
export const utc = (isoText: string | undefined): string => shortTime(isoText).replace(" UTC", "");

/** `source/series`, or the source alone. */
export const seriesName = (source: string, series: string | undefined): string =>
  series ? `${source}/${series}` : source;
