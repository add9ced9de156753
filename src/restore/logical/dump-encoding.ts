/**
 * The client encodings a plain dump can declare (`SET client_encoding = '…'`), and how the
 * byte-level scanner reads each. The scanner only looks for ASCII syntax (quotes, semicolons,
 * backslashes); in every server encoding a multibyte character is made of high bytes only, so
 * that is safe as it is. The client-only encodings (SJIS, BIG5, GBK, UHC, GB18030, JOHAB) can
 * carry an ASCII byte — a backslash, a letter — as the trail byte of a character; psql reads
 * them by character length (its lexer masks trail bytes before lexing), and the scanner does the
 * same with the same length rules as PostgreSQL's pg_wchar `mblen` functions.
 */

/** How a client-only encoding tells a character's length from its lead byte. */
export type MultibyteRule = "sjis" | "double" | "gb18030" | "euc";

/** Client-only encodings whose multibyte characters may contain ASCII bytes, by length rule. */
export const MULTIBYTE_CLIENT_ENCODINGS: Readonly<Record<string, MultibyteRule>> = {
  SJIS: "sjis",
  SHIFT_JIS_2004: "sjis",
  BIG5: "double",
  GBK: "double",
  UHC: "double",
  GB18030: "gb18030",
  JOHAB: "euc",
};

/** The byte that stands for a trail byte once masked: a high byte, never syntax. */
const MASK = 0xff;
const LF = 0x0a;

/**
 * Overwrites with 0xFF, in place, the trail bytes of every multibyte character of `buf`, as
 * psql does before lexing a line: a lead byte (high bit set) takes 1 more byte (BIG5, GBK, UHC;
 * SJIS except its one-byte kana 0xA1–0xDF; EUC-style JOHAB, 2 after 0x8F), GB18030 3 more when
 * the next byte is 0x30–0x39. A character never runs past the end of its line. `pending` is
 * what the previous buffer left unfinished (trail bytes still due; -1: a GB18030 lead whose next
 * byte decides); the same is returned for the next buffer.
 */
export function maskTrailBytes(buf: Uint8Array, rule: MultibyteRule, pending = 0): number {
  const n = buf.length;
  let due = pending;
  for (let i = 0; i < n; i++) {
    const b = buf[i]!;
    if (due !== 0) {
      if (b === LF) {
        due = 0;
        continue;
      }
      if (due === -1) due = b >= 0x30 && b <= 0x39 ? 3 : 1;
      buf[i] = MASK;
      due--;
      continue;
    }
    if (b < 0x80) continue;
    if (rule === "sjis") due = b >= 0xa1 && b <= 0xdf ? 0 : 1;
    else if (rule === "double") due = 1;
    else if (rule === "euc") due = b === 0x8f ? 2 : 1;
    else due = -1;
  }
  return due;
}

/** PostgreSQL encoding names that differ from their WHATWG labels. */
const LABELS: Record<string, string> = {
  LATIN2: "iso-8859-2",
  LATIN3: "iso-8859-3",
  LATIN4: "iso-8859-4",
  LATIN5: "windows-1254",
  LATIN6: "iso-8859-10",
  LATIN7: "iso-8859-13",
  LATIN8: "iso-8859-14",
  LATIN9: "iso-8859-15",
  LATIN10: "iso-8859-16",
  ISO_8859_5: "iso-8859-5",
  ISO_8859_6: "iso-8859-6",
  ISO_8859_7: "iso-8859-7",
  ISO_8859_8: "iso-8859-8",
  KOI8R: "koi8-r",
  KOI8U: "koi8-u",
  EUC_JP: "euc-jp",
  EUC_KR: "euc-kr",
  EUC_CN: "gb2312",
  WIN866: "ibm866",
  WIN874: "windows-874",
  WIN1250: "windows-1250",
  WIN1251: "windows-1251",
  WIN1252: "windows-1252",
  WIN1253: "windows-1253",
  WIN1254: "windows-1254",
  WIN1255: "windows-1255",
  WIN1256: "windows-1256",
  WIN1257: "windows-1257",
  WIN1258: "windows-1258",
  SJIS: "shift_jis",
  SHIFT_JIS_2004: "shift_jis",
  BIG5: "big5",
  GBK: "gbk",
  GB18030: "gb18030",
  UHC: "euc-kr",
};

/** Normalises an encoding name as PostgreSQL does (case and `-`/`_` insensitive aliases). */
export function normaliseEncoding(name: string): string {
  const n = name.trim().toUpperCase().replace(/-/g, "_");
  if (n === "UTF_8" || n === "UNICODE") return "UTF8";
  if (n === "ISO_8859_1" || n === "ISO88591") return "LATIN1";
  if (n === "SHIFTJIS" || n === "SHIFT_JIS" || n === "MSKANJI" || n === "WIN932") return "SJIS";
  if (n === "WIN936") return "GBK";
  if (n === "WIN950") return "BIG5";
  if (n === "WIN949") return "UHC";
  return n;
}

/** Decodes the bytes of one statement in the dump's client encoding (names, messages). */
export function decodeAs(encoding: string, bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (encoding === "UTF8") return buf.toString("utf8");
  if (encoding === "LATIN1" || encoding === "SQL_ASCII") return buf.toString("latin1");
  const label = LABELS[encoding];
  if (label) {
    try {
      return new TextDecoder(label).decode(buf);
    } catch {
      // a Node build without full ICU lacks some legacy decoders: fall through
    }
  }
  return buf.toString("latin1");
}
