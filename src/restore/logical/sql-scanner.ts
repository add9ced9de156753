/**
 * A streaming lexer for plain SQL dumps that follows psql's rules closely enough to know
 * where psql would see a backslash meta-command: outside quotes, comments and COPY data.
 * It reads bytes, not text, so a dump reaches psql exactly as written whatever its encoding:
 * only ASCII syntax matters here, and statements are decoded in the dump's own
 * `client_encoding` for names and messages. In the client-only encodings whose characters can
 * hold ASCII bytes (SJIS, BIG5, GBK, UHC, GB18030, JOHAB) syntax is read from a copy with the
 * trail bytes masked, as psql's lexer does, from the line after the encoding was declared. One pass, constant memory: a statement is kept
 * up to a cap for the hazard checks, a line is never buffered, and a line longer than the
 * configured limit stops the scan with a reason.
 */
import {
  decodeAs,
  MULTIBYTE_CLIENT_ENCODINGS,
  type MultibyteRule,
  maskTrailBytes,
  normaliseEncoding,
} from "./dump-encoding.js";
import { type MetaCommand, metaProblem } from "./meta-commands.js";
import { rolesInStatement, type SqlHazard, statementHazards } from "./sql-hazards.js";

export { ALLOWED_META_COMMANDS, type MetaCommand } from "./meta-commands.js";
export { rolesInStatement, type SqlHazard } from "./sql-hazards.js";

/** The longest line outside COPY data a dump may have unless configured otherwise. */
export const DEFAULT_MAX_LINE_BYTES = 256 * 1024 * 1024;
/** PostgreSQL cannot load a longer COPY line (its 1 GB allocation limit). */
const COPY_LINE_LIMIT = 1024 * 1024 * 1024;
/** pg_dump's meta-command lines are short; a longer one is not pg_dump's. */
const META_LINE_LIMIT = 64 * 1024;
/** The part of a statement kept for the hazard and role checks. */
const STMT_CAP = 131_072;
const COMMENT_CAP = 128;
/** The type in the comment pg_dump writes before each entry (a long name may cut it off: unread). */
const TOC_COMMENT = /^(?:Data for )?Name: .*; Type: ([A-Z ]+); Schema: /;
/** The entry types a `pg_dump --data-only` dump holds. */
const DATA_ENTRY_TYPES = new Set([
  "TABLE DATA",
  "SEQUENCE SET",
  "BLOB",
  "BLOBS",
  "LARGE OBJECT",
  "LARGE OBJECTS",
]);
/** Statements that can name roles (owners, grants, policies, SET ROLE). */
const ROLE_KEYWORDS = new Set(["ALTER", "GRANT", "REVOKE", "CREATE", "SET", "COMMENT", "SECURITY"]);

const NORMAL = 0;
const SQUOTE = 1;
const DQUOTE = 2;
const DOLLAR = 3;
const BLOCK = 4;
const LINE_COMMENT = 5;
const META = 6;
const COPY = 7;
/** The rest of the line of a `COPY … FROM stdin;` statement. */
const COPY_REST = 8;

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const TAB = 0x09;
const BACKSLASH = 0x5c;
const QUOTE = 0x27;
const DQ = 0x22;
const DOLLAR_SIGN = 0x24;
const SEMI = 0x3b;
const DASH = 0x2d;
const SLASH = 0x2f;
const STAR = 0x2a;
const DOT = 0x2e;
const BLANK = 0x5f;
/**
 * The code of quoted contents (strings, quoted names, dollar quotes): one `_` for a whole run,
 * so a 32 KiB lowrite() literal costs the statement regexes one character. Not a byte value.
 */
const QBLANK = -1;
/** Bytes that end a run of ordinary code: what the lexer must look at one by one. */
const SPECIAL = new Uint8Array(256);
for (const b of [LF, DASH, SLASH, BACKSLASH, QUOTE, DQ, DOLLAR_SIGN, SEMI]) SPECIAL[b] = 1;
/** Runs shorter than this are copied byte by byte (a subarray costs more than a short loop). */
const SHORT_RUN = 48;

/** Identifier bytes as PostgreSQL's lexer sees them (high bytes count as letters). */
function identStart(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === BLANK || b >= 0x80;
}
function identCont(b: number): boolean {
  return identStart(b) || (b >= 0x30 && b <= 0x39);
}
function mib(bytes: number): string {
  if (bytes < 1048576) return `${bytes} bytes`;
  return `${Math.round((bytes / 1048576) * 100) / 100} MiB`;
}
function isSpace(b: number): boolean {
  return b === SP || b === TAB || b === LF || b === CR;
}

/** Options of the scanner. */
export interface ScannerOptions {
  /** The longest line allowed outside COPY data, in bytes. */
  maxLineBytes?: number;
}

/** Feeds a plain dump through psql's lexing rules, chunk by chunk. */
export class SqlScanner {
  readonly metaCommands: MetaCommand[] = [];
  readonly hazards: SqlHazard[] = [];
  readonly roles = new Set<string>();
  /** Tablespaces the dump puts objects in (pg_dump's SET default_tablespace). */
  readonly tablespaces = new Set<string>();
  /** Line of the first statement that is a COPY (any direction), when there is one. */
  firstCopyLine: number | undefined;
  /** A statement `CREATE [PROCEDURAL] LANGUAGE plpgsql` (pg_dump 8.x), which fails on 9.0 and later. */
  createsPlpgsql = false;
  readonly #maxLine: number;
  #state = NORMAL;
  #escapes = false;
  #escapeNext = false;
  #depth = 0;
  #tag: Uint8Array = new Uint8Array(0);
  #stdStrings = true;
  #encoding = "UTF8";
  /** The multibyte rule syntax is read with (psql's lexer: the encoding at the line's start). */
  #rule: MultibyteRule | undefined;
  /** The rule a declared encoding brings, applied from the next line. */
  #nextRule: MultibyteRule | undefined;
  #ruleChange = false;
  /** The rule changed inside a buffer: the rest of it must be masked again. */
  #remask = false;
  /** Trail bytes the previous buffer left unmasked (maskTrailBytes' `pending`). */
  #maskDue = 0;
  readonly #stmt = new Uint8Array(STMT_CAP);
  /** The statement with the contents of strings and identifiers blanked. */
  readonly #code = new Uint8Array(STMT_CAP);
  #stmtLen = 0;
  /** The code's own length: quoted runs are one byte there. */
  #codeLen = 0;
  /** The last code byte stands for quoted contents (the next quoted byte joins it). */
  #codeQuoted = false;
  #stmtStarted = false;
  #stmtLine = 0;
  #line = 1;
  #lineStart = 0;
  #pos = 0;
  #prev = LF;
  /** The byte before #prev: tells `E'` (an escape string) from a word ending in E. */
  #prevPrev = LF;
  #carry: Uint8Array | undefined;
  #meta: { start: number; line: number; bytes: Uint8Array; len: number; overflow: boolean } | undefined;
  #comment: { bytes: Uint8Array; len: number } | undefined;
  readonly #metaBytes = new Uint8Array(META_LINE_LIMIT);
  readonly #commentBytes = new Uint8Array(COMMENT_CAP);
  #copyAtLineStart = false;
  #header: "database" | "cluster" | undefined;
  #footer: "database" | "cluster" | undefined;
  #afterFooter = false;
  #sawContent = false;
  #last: { line: number; head: Uint8Array; len: number; encoding: string } | undefined;
  #copyFrom: { line: number; head: Uint8Array; len: number; encoding: string } | undefined;
  #stopped = false;
  /** The entry types pg_dump's comments named ("TABLE", "TABLE DATA", …). */
  readonly #entryTypes = new Set<string>();

  constructor(opts: ScannerOptions = {}) {
    this.#maxLine = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  }

  /** Bytes scanned so far (a few bytes awaiting lookahead are not counted yet). */
  get pos(): number {
    return this.#pos;
  }

  /** Where the meta-command line being read began, while one is incomplete. */
  get metaStart(): number | undefined {
    return this.#state === META ? this.#meta?.start : undefined;
  }

  /** The client encoding the dump declared last (UTF8 until it declares one). */
  get encoding(): string {
    return this.#encoding;
  }

  /** The first meta-command psql would run that is not one pg_dump writes. */
  get forbidden(): MetaCommand | undefined {
    return this.metaCommands.find((m) => m.problem !== undefined);
  }

  /** Whether psql would see a meta-command `command` anywhere. */
  has(command: string): boolean {
    return this.metaCommands.some((m) => m.command === command);
  }

  /** The first hazard, if any. */
  get hazard(): SqlHazard | undefined {
    return this.hazards[0];
  }

  /**
   * Why the dump is incomplete, once `end()` was called: a pg_dump or pg_dumpall header
   * without the completion footer pg_dump writes last. Undefined for complete dumps and for
   * SQL that does not start with pg_dump's header.
   */
  get cutOff(): string | undefined {
    const want = this.#header;
    if (!want) return undefined;
    if (this.#footer === want && !this.#afterFooter) return undefined;
    const quote = (s: { head: Uint8Array; len: number; encoding: string }) => {
      const text = decodeAs(s.encoding, s.head.subarray(0, s.len)).trim().replace(/\s+/g, " ");
      return `"${text.length > 80 ? `${text.slice(0, 80)}…` : text}"`;
    };
    const where =
      this.#state === COPY && this.#copyFrom
        ? `cut inside the data of the COPY at line ${this.#copyFrom.line}: ${quote(this.#copyFrom)}`
        : this.#last
          ? `last statement at line ${this.#last.line}: ${quote(this.#last)}`
          : "no complete statement";
    return `dump is cut off: no completion footer (${where})`;
  }

  /** Scans one line (without its newline). Returns a meta-command found on it, if any. */
  line(text: string): MetaCommand | undefined {
    const before = this.metaCommands.length;
    this.write(Buffer.from(`${text}\n`, "utf8"));
    return this.metaCommands[before];
  }

  /** Scans the next bytes of the dump. */
  write(chunk: Uint8Array): void {
    if (this.#stopped) return;
    let buf = chunk;
    if (this.#carry) {
      buf = Buffer.concat([this.#carry, chunk]);
      this.#carry = undefined;
    }
    const used = this.#feed(buf, false);
    if (used < buf.length) this.#carry = Uint8Array.prototype.slice.call(buf, used);
    this.#checkLineLength();
  }

  /**
   * Runs the lexer over `buf` (raw bytes) and a view of it for syntax: the same bytes, or a
   * copy with multibyte trail bytes masked. Unconsumed input always starts at an ASCII byte the
   * lexer waits on (or a line), never inside a character, so it is masked afresh next time.
   */
  #feed(buf: Uint8Array, eof: boolean): number {
    let off = 0;
    for (;;) {
      const part = off ? buf.subarray(off) : buf;
      let syn = part;
      let due = 0;
      if (this.#rule) {
        syn = Uint8Array.prototype.slice.call(part);
        due = maskTrailBytes(syn, this.#rule, this.#maskDue);
      }
      this.#remask = false;
      const used = this.#run(part, syn, this.#pos, eof);
      this.#pos += used;
      off += used;
      this.#maskDue = used === part.length ? due : 0;
      if (!this.#remask || off >= buf.length || this.#stopped) return off;
    }
  }

  /** Ends the input: finishes what waited for lookahead and the last line. */
  end(): void {
    if (this.#stopped) return;
    if (this.#carry) {
      const rest = this.#carry;
      this.#carry = undefined;
      this.#feed(rest, true);
    }
    if (this.#stopped) return;
    if (this.#state === META) this.#endMeta(this.#pos);
    else if (this.#state === LINE_COMMENT) this.#endComment();
    this.#checkLineLength();
  }

  /**
   * Scans `raw` (whose first byte is at offset `base`), reading syntax from `buf` (raw, or raw
   * with multibyte trail bytes masked); returns how many bytes it consumed.
   */
  #run(raw: Uint8Array, buf: Uint8Array, base: number, eof: boolean): number {
    const n = buf.length;
    let i = 0;
    // where the next newline, quote and backslash of `buf` are: found natively, each looked up
    // again only once passed, so long string contents cost one search per buffer, never one per string
    let lfAt = -1;
    let quoteAt = -1;
    let bsAt = -1;
    const next = (byte: number, from: number) => {
      const k = buf.indexOf(byte, from);
      return k < 0 ? n : k;
    };
    while (i < n && !this.#stopped && !this.#remask) {
      const st = this.#state;
      if (st === COPY) {
        if (this.#copyAtLineStart && buf[i] === BACKSLASH) {
          // psql ends COPY data at a line that is exactly \. (LF or CRLF)
          if (i + 3 >= n && !eof && buf.indexOf(LF, i) < 0) return i;
          const c2 = buf[i + 2];
          if (
            buf[i + 1] === DOT &&
            (c2 === LF || c2 === undefined || (c2 === CR && (buf[i + 3] === LF || buf[i + 3] === undefined)))
          ) {
            this.#state = NORMAL;
            this.#prev = LF;
            i += c2 === CR ? 3 : 2;
            continue;
          }
        }
        const j = buf.indexOf(LF, i);
        if (j < 0) {
          this.#copyAtLineStart = false;
          return n;
        }
        this.#newline(base + j + 1);
        this.#copyAtLineStart = true;
        i = j + 1;
        continue;
      }
      const b = buf[i]!;
      if (b === LF) {
        if (st === LINE_COMMENT) this.#endComment();
        else if (st === META) this.#endMeta(base + i + 1);
        else if (st === COPY_REST) {
          this.#state = COPY;
          this.#copyAtLineStart = true;
        } else {
          this.#escapeNext = false;
          this.#add(b, LF);
        }
        this.#newline(base + i + 1);
        i++;
        continue;
      }
      if (st === NORMAL) {
        if (b === DASH || b === SLASH) {
          if (i + 1 >= n && !eof) return i;
          if (b === DASH && buf[i + 1] === DASH) {
            this.#startComment(base + i);
            i += 2;
            continue;
          }
          if (b === SLASH && buf[i + 1] === STAR) {
            this.#state = BLOCK;
            this.#depth = 1;
            this.#prev = SP;
            this.#prevPrev = SP;
            i += 2;
            continue;
          }
        } else if (b === BACKSLASH) {
          this.#startMeta(base + i);
          continue;
        } else if (b === QUOTE) {
          const e = this.#prev === 0x45 || this.#prev === 0x65;
          // psql reads `E'` as an escape string only where E starts a token; after a word
          // (`somE'`, `1E'`) lexers of different versions disagree, and pg_dump never writes it
          const afterWord = e && (identCont(this.#prevPrev) || this.#prevPrev === DOLLAR_SIGN);
          if (afterWord) this.#ambiguous("a quote right after a word ending in E");
          this.#escapes = !this.#stdStrings || (e && !afterWord);
          this.#add(b, b);
          this.#state = SQUOTE;
          i++;
          continue;
        } else if (b === DQ) {
          this.#add(b, b);
          this.#state = DQUOTE;
          i++;
          continue;
        } else if (b === DOLLAR_SIGN && identCont(this.#prev)) {
          // a word followed by `$` is one identifier for psql, but `1$$` is a number and a
          // dollar quote: pg_dump never writes an unquoted `$` touching a word
          this.#ambiguous("a $ right after a word");
        } else if (b === DOLLAR_SIGN) {
          let j = i + 1;
          if (j < n && identStart(buf[j]!)) while (j < n && j - i < 80 && identCont(buf[j]!)) j++;
          if (j >= n && !eof) return i;
          if (j < n && buf[j] === DOLLAR_SIGN) {
            this.#tag = Uint8Array.prototype.slice.call(buf, i, j + 1);
            for (let k = i; k <= j; k++) this.#add(buf[k]!, QBLANK, raw[k]!);
            this.#state = DOLLAR;
            i = j + 1;
            continue;
          }
        } else if (b === SEMI) {
          this.#prev = b;
          this.#endStatement();
          i++;
          continue;
        }
        this.#add(b, b, raw[i]!);
        i++;
        // a run of ordinary code (names, numbers, commas): taken in one go, like string contents
        let j = i;
        while (j < n && SPECIAL[buf[j]!] === 0) j++;
        if (j > i) {
          this.#addPlain(raw, buf, i, j);
          i = j;
        }
        continue;
      }
      if (st === SQUOTE) {
        if (!this.#escapeNext) {
          // the bulk of an --inserts dump is string contents: take them in one go
          if (lfAt < i) lfAt = next(LF, i);
          if (quoteAt < i) quoteAt = next(QUOTE, i);
          let j = Math.min(lfAt, quoteAt);
          if (this.#escapes) {
            if (bsAt < i) bsAt = next(BACKSLASH, i);
            if (bsAt < j) j = bsAt;
          }
          if (j > i) {
            this.#addQuoted(raw, buf, i, j);
            i = j;
            continue;
          }
        }
        if (this.#escapeNext) this.#escapeNext = false;
        else if (b === BACKSLASH && this.#escapes) this.#escapeNext = true;
        else if (b === QUOTE) {
          if (i + 1 >= n && !eof) return i;
          if (buf[i + 1] === QUOTE) {
            this.#add(b, QBLANK);
            this.#add(b, QBLANK);
            i += 2;
            continue;
          }
          this.#state = NORMAL;
        }
        this.#add(b, QBLANK, raw[i]!);
        i++;
        continue;
      }
      if (st === DQUOTE) {
        if (b === DQ) this.#state = NORMAL;
        this.#add(b, QBLANK, raw[i]!);
        i++;
        continue;
      }
      if (st === DOLLAR) {
        const tag = this.#tag;
        if (b === DOLLAR_SIGN) {
          if (i + tag.length > n && !eof) return i;
          let match = i + tag.length <= n;
          for (let k = 1; match && k < tag.length; k++) match = buf[i + k] === tag[k];
          if (match) {
            for (let k = 0; k < tag.length; k++) this.#add(tag[k]!, QBLANK, raw[i + k]!);
            this.#state = NORMAL;
            // a closed dollar quote ends a token, like whitespace
            this.#prev = SP;
            this.#prevPrev = SP;
            i += tag.length;
            continue;
          }
        }
        this.#add(b, QBLANK, raw[i]!);
        i++;
        continue;
      }
      if (st === BLOCK) {
        if (b === SLASH || b === STAR) {
          if (i + 1 >= n && !eof) return i;
          if (b === SLASH && buf[i + 1] === STAR) {
            this.#depth++;
            i += 2;
            continue;
          }
          if (b === STAR && buf[i + 1] === SLASH) {
            if (--this.#depth === 0) this.#state = NORMAL;
            i += 2;
            continue;
          }
        }
        i++;
        continue;
      }
      // LINE_COMMENT, META, COPY_REST run to the end of the line: jump there
      const j = buf.indexOf(LF, i);
      const stop = j < 0 ? n : j;
      if (st === LINE_COMMENT) {
        const c = this.#comment;
        if (c && c.len < COMMENT_CAP) {
          const take = raw.subarray(i, Math.min(stop, i + COMMENT_CAP - c.len));
          c.bytes.set(take, c.len);
          c.len += take.length;
        }
      } else if (st === META) {
        const m = this.#meta!;
        const room = META_LINE_LIMIT - m.len;
        if (stop - i > room) m.overflow = true;
        const take = raw.subarray(i, Math.min(stop, i + room));
        m.bytes.set(take, m.len);
        m.len += take.length;
      } else {
        for (let k = i; k < stop; k++) {
          if (!isSpace(buf[k]!)) {
            this.#hazardAt(this.#line, {
              kind: "defect",
              reason: "SQL after COPY … FROM stdin on the same line (psql would run it after the data)",
            });
            break;
          }
        }
      }
      i = stop;
    }
    return i;
  }

  /** Adds quoted bytes (already inside a started statement) to the statement, blanked in the code. */
  #addQuoted(raw: Uint8Array, buf: Uint8Array, from: number, to: number): void {
    this.#copyRaw(raw, from, to);
    this.#codeByte(QBLANK);
    this.#prevPrev = to - from >= 2 ? buf[to - 2]! : this.#prev;
    this.#prev = buf[to - 1]!;
  }

  /** Adds a run of ordinary code bytes (no newline, quote, comment start, `$`, `;` or backslash). */
  #addPlain(raw: Uint8Array, buf: Uint8Array, from: number, to: number): void {
    this.#copyRaw(raw, from, to);
    const len = this.#codeLen;
    const take = Math.min(to - from, STMT_CAP - len);
    if (take >= SHORT_RUN) this.#code.set(buf.subarray(from, from + take), len);
    else for (let k = 0; k < take; k++) this.#code[len + k] = buf[from + k]!;
    if (take > 0) {
      this.#codeLen = len + take;
      this.#codeQuoted = false;
    }
    if (!this.#stmtStarted) {
      for (let k = from; k < to; k++) {
        if (!isSpace(buf[k]!)) {
          this.#stmtStarted = true;
          this.#stmtLine = this.#line;
          this.#content();
          break;
        }
      }
    }
    this.#prevPrev = to - from >= 2 ? buf[to - 2]! : this.#prev;
    this.#prev = buf[to - 1]!;
  }

  /** Appends dump bytes to the statement text (up to its cap). */
  #copyRaw(raw: Uint8Array, from: number, to: number): void {
    const len = this.#stmtLen;
    const take = Math.min(to - from, STMT_CAP - len);
    if (take <= 0) return;
    if (take >= SHORT_RUN) this.#stmt.set(raw.subarray(from, from + take), len);
    else for (let k = 0; k < take; k++) this.#stmt[len + k] = raw[from + k]!;
    this.#stmtLen = len + take;
  }

  /** Appends one byte to the code; QBLANK joins a run of quoted contents into one `_`. */
  #codeByte(c: number): void {
    if (c === QBLANK) {
      if (this.#codeQuoted) return;
      this.#codeQuoted = true;
      c = BLANK;
    } else this.#codeQuoted = false;
    const len = this.#codeLen;
    if (len < STMT_CAP) {
      this.#code[len] = c;
      this.#codeLen = len + 1;
    }
  }

  /** Adds one byte: `b` as the lexer reads it, `c` for the code (or QBLANK), `raw` as the dump has it. */
  #add(b: number, c: number, raw = b): void {
    const len = this.#stmtLen;
    if (len < STMT_CAP) {
      this.#stmt[len] = raw;
      this.#stmtLen = len + 1;
    }
    this.#codeByte(c);
    if (!this.#stmtStarted && !isSpace(b)) {
      this.#stmtStarted = true;
      this.#stmtLine = this.#line;
      this.#content();
    }
    this.#prevPrev = this.#prev;
    this.#prev = b;
  }

  /** Something other than a comment or an unrestrict line: a footer before it does not count. */
  #content(): void {
    this.#sawContent = true;
    if (this.#footer) this.#afterFooter = true;
  }

  #newline(next: number): void {
    // a line that ended inside one chunk is measured here, an unfinished one after each write
    if (next - 1 - this.#lineStart > this.#maxLine) this.#checkLineLength(next - 1 - this.#lineStart);
    if (this.#stopped) return;
    this.#line++;
    this.#lineStart = next;
    if (this.#ruleChange) {
      // psql sets up each line's lexer with the encoding in force when the line starts
      this.#ruleChange = false;
      if (this.#nextRule !== this.#rule) {
        this.#rule = this.#nextRule;
        this.#remask = true;
      }
    }
  }

  #startComment(at: number): void {
    this.#state = LINE_COMMENT;
    // only a comment that starts a line can be pg_dump's header or footer
    this.#comment = at === this.#lineStart ? { bytes: this.#commentBytes, len: 0 } : undefined;
  }

  #endComment(): void {
    this.#state = NORMAL;
    const c = this.#comment;
    this.#comment = undefined;
    if (!c) return;
    const text = Buffer.from(c.bytes.buffer, 0, c.len).toString("latin1").trim();
    if (text === "PostgreSQL database dump complete") {
      this.#footer = "database";
      this.#afterFooter = false;
    } else if (text === "PostgreSQL database cluster dump complete") {
      this.#footer = "cluster";
      this.#afterFooter = false;
    } else if (!this.#header && !this.#sawContent) {
      if (text === "PostgreSQL database dump") this.#header = "database";
      else if (text === "PostgreSQL database cluster dump") this.#header = "cluster";
    } else {
      // pg_dump names each entry it writes: "-- Name: t; Type: TABLE; Schema: public; Owner: o"
      const type = TOC_COMMENT.exec(text)?.[1];
      if (type) this.#entryTypes.add(type);
    }
  }

  /**
   * Whether the dump holds only data (pg_dump --data-only): its entry comments name table data
   * and none of the schema objects that data needs.
   */
  get dataOnly(): boolean {
    if (!this.#entryTypes.has("TABLE DATA")) return false;
    for (const t of this.#entryTypes) if (!DATA_ENTRY_TYPES.has(t)) return false;
    return true;
  }

  #startMeta(at: number): void {
    this.#state = META;
    this.#meta = { start: at, line: this.#line, bytes: this.#metaBytes, len: 0, overflow: false };
  }

  #endMeta(end: number): void {
    this.#state = NORMAL;
    const m = this.#meta!;
    this.#meta = undefined;
    let syntax = m.bytes.subarray(0, m.len);
    if (this.#rule) {
      syntax = Uint8Array.prototype.slice.call(syntax);
      maskTrailBytes(syntax, this.#rule);
    }
    const body = Buffer.from(syntax.buffer, syntax.byteOffset, syntax.length).toString("latin1");
    const command = /^\\([A-Za-z]+|[^\sA-Za-z])/.exec(body)?.[1] ?? "";
    const problem = m.overflow ? "the line is longer than 64 KiB" : metaProblem(command, body);
    const text = decodeAs(this.#encoding, m.bytes.subarray(0, Math.min(m.len, 240))).slice(0, 80);
    this.metaCommands.push({
      line: m.line,
      command,
      text,
      start: m.start,
      end,
      ...(problem ? { problem } : {}),
    });
    if (command !== "unrestrict") this.#content();
    if (command === "encoding" && !problem) this.#setEncoding(body.slice("\\encoding ".length).trim());
  }

  #endStatement(): void {
    const len = this.#stmtLen;
    const codeLen = this.#codeLen;
    const started = this.#stmtStarted;
    this.#stmtLen = 0;
    this.#codeLen = 0;
    this.#codeQuoted = false;
    this.#stmtStarted = false;
    if (!started) return;
    const line = this.#stmtLine;
    const kw = this.#keyword(codeLen);
    // reuses one small buffer: a big dump has millions of statements
    this.#last ??= { line, head: new Uint8Array(240), len: 0, encoding: "" };
    const last = this.#last;
    last.line = line;
    last.len = Math.min(len, 240);
    last.head.set(this.#stmt.subarray(0, last.len));
    last.encoding = this.#encoding;
    // most of a big dump is INSERT rows (--inserts) or COPY data: an INSERT carries no hazard,
    // role or setting, so it is not decoded at all
    if (kw === "INSERT") return;
    const stmt = decodeAs(this.#encoding, this.#stmt.subarray(0, len)).trim();
    const code = Buffer.from(this.#code.buffer, 0, codeLen).toString("latin1").trim();
    for (const h of statementHazards(stmt, code, line)) this.hazards.push(h);
    if (kw === "COPY") this.firstCopyLine ??= line;
    if (
      kw === "CREATE" &&
      /^CREATE\s+(?:TRUSTED\s+)?(?:PROCEDURAL\s+)?LANGUAGE\s+"?plpgsql"?\s*;?$/i.test(code)
    )
      this.createsPlpgsql = true;
    if (kw === "COPY" && /^COPY\b[\s\S]*\bFROM\s+stdin\b/i.test(code)) {
      this.#state = COPY_REST;
      this.#copyFrom = { ...last, head: last.head.slice() };
    }
    const scs = /^SET\s+standard_conforming_strings\s*(?:=|TO)\s*'?(on|off)'?$/i.exec(stmt);
    if (scs) this.#stdStrings = scs[1]!.toLowerCase() === "on";
    else if (/^RESET\s+ALL$/i.test(code)) this.#stdStrings = true;
    else if (
      /\bstandard_conforming_strings\b/i.test(code) ||
      (/\bset_config\s*\(/i.test(code) && /standard_conforming_strings/i.test(stmt))
    ) {
      // psql lexes strings by this setting as the server reports it: any other way of
      // changing it (SET LOCAL, ALTER DATABASE … SET, set_config) could make psql and this
      // scanner read quotes differently
      this.hazards.push({
        line,
        kind: "defect",
        reason: "a change of standard_conforming_strings other than pg_dump's SET",
      });
    }
    if (kw === "SET") {
      const enc = /^SET\s+client_encoding\s*(?:=|TO)\s*'([^']*)'/i.exec(stmt);
      if (enc) this.#setEncoding(enc[1]!);
      const ts =
        /^SET\s+default_tablespace\s*(?:=|TO)\s*(?:'((?:[^']|'')*)'|"((?:[^"]|"")*)"|([A-Za-z_][\w$]*))/i.exec(
          stmt,
        );
      const name = ts && (ts[1]?.replace(/''/g, "'") ?? ts[2]?.replace(/""/g, '"') ?? ts[3]?.toLowerCase());
      if (name) this.tablespaces.add(name);
    }
    if (ROLE_KEYWORDS.has(kw)) rolesInStatement(stmt, this.roles);
  }

  /** The statement's first word, upper-cased (read from the bytes, no string built for it). */
  #keyword(len: number): string {
    const code = this.#code;
    let i = 0;
    while (i < len && isSpace(code[i]!)) i++;
    let kw = "";
    while (i < len && kw.length < 12) {
      const b = code[i]!;
      if (b >= 0x61 && b <= 0x7a) kw += String.fromCharCode(b - 32);
      else if (b >= 0x41 && b <= 0x5a) kw += String.fromCharCode(b);
      else break;
      i++;
    }
    return kw;
  }

  #setEncoding(name: string): void {
    const enc = normaliseEncoding(name);
    this.#encoding = enc;
    this.#nextRule = MULTIBYTE_CLIENT_ENCODINGS[enc];
    this.#ruleChange = true;
  }

  #ambiguous(what: string): void {
    this.#hazardAt(this.#line, {
      kind: "defect",
      reason: `${what} (psql could read the quotes differently from this scanner)`,
    });
  }

  #hazardAt(line: number, h: Omit<SqlHazard, "line">): void {
    this.hazards.push({ line, ...h });
  }

  #checkLineLength(length?: number): void {
    const len = length ?? this.#pos + (this.#carry?.length ?? 0) - this.#lineStart;
    const copy = this.#state === COPY;
    const limit = copy ? COPY_LINE_LIMIT : this.#maxLine;
    if (len <= limit) return;
    this.#hazardAt(this.#line, {
      kind: "defect",
      reason: "an over-long line",
      message: `line ${this.#line} is longer than ${mib(limit)}${copy ? " of COPY data (more than PostgreSQL can load)" : " outside COPY data (the configured limit)"}; refused, the scan stopped there`,
    });
    this.#stopped = true;
  }
}
