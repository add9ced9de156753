/**
 * The client encodings a plain dump can declare (`SET client_encoding = '…'`), and what the
 * byte-level scanner can do with each. The scanner only looks for ASCII syntax (quotes,
 * semicolons, backslashes); that is safe for every encoding whose multibyte characters never
 * contain an ASCII byte — all server encodings. The client-only encodings below can carry a
 * backslash or a quote as the second byte of a character, so a scan would see syntax psql
 * does not see; those are declined.
 */
/** Client-only encodings whose multibyte characters may contain ASCII bytes. */
export const UNSCANNABLE_ENCODINGS = new Set([
  "SJIS",
  "SHIFT_JIS_2004",
  "BIG5",
  "GBK",
  "GB18030",
  "UHC",
  "JOHAB",
]);

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
