/**
 * A lexer for plain SQL dumps that follows psql's rules closely enough to know where psql
 * would see a backslash meta-command: outside quotes, comments and COPY data. `\!` runs a
 * shell on the host running psql, so anything but the few commands pg_dump itself writes is
 * refused. It also collects the role names the dump refers to.
 */

/** Meta-commands genuine pg_dump / pg_dumpall output contains. */
export const ALLOWED_META_COMMANDS = new Set(["connect", "c", "restrict", "unrestrict", "encoding"]);

/**
 * SQL that would run code or touch files on the server's host. pg_dump never writes any of
 * it; a dump that carries it was crafted or tampered with (`defect`), except a C function
 * from a library outside $libdir, which Attest refuses to load (`refuse`).
 */
export interface SqlHazard {
  line: number;
  kind: "defect" | "refuse";
  reason: string;
}

/** Functions a top-level SELECT in pg_dump output calls (search_path, sequences, large objects). */
const DUMP_SELECT_FUNCTIONS = new Set([
  "set_config",
  "setval",
  "lo_create",
  "lo_open",
  "lowrite",
  "lo_close",
  "lo_unlink",
]);

/** A meta-command psql would have executed. */
export interface MetaCommand {
  line: number;
  command: string;
  text: string;
}

type State =
  | { kind: "normal" }
  | { kind: "squote"; escapes: boolean }
  | { kind: "dquote" }
  | { kind: "dollar"; tag: string }
  | { kind: "block"; depth: number }
  | { kind: "copy" };

const ROLE_NAME = `("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const ROLE_LIST = String.raw`(${ROLE_NAME}(?:\s*,\s*${ROLE_NAME})*)`;
const ROLE_PATTERNS = [
  new RegExp(String.raw`\bOWNER\s+TO\s+${ROLE_NAME}`, "gi"),
  new RegExp(String.raw`\bGRANT\s[\s\S]*?\bTO\s+${ROLE_LIST}`, "gi"),
  new RegExp(String.raw`\bREVOKE\s[\s\S]*?\bFROM\s+${ROLE_LIST}`, "gi"),
  new RegExp(String.raw`\bFOR\s+(?:ROLE|USER)\s+${ROLE_LIST}`, "gi"),
  new RegExp(String.raw`\bAUTHORIZATION\s+${ROLE_NAME}`, "gi"),
  new RegExp(String.raw`\bSET\s+(?:SESSION\s+)?ROLE\s+${ROLE_NAME}`, "gi"),
  new RegExp(String.raw`\bCREATE\s+POLICY\s[\s\S]*?\bTO\s+${ROLE_LIST}`, "gi"),
];
const NOT_ROLES = new Set(["public", "current_user", "session_user", "current_role", "none", "all", "group"]);

/** Role names a SQL statement refers to (owners, grantees). */
export function rolesInStatement(stmt: string, into: Set<string>): void {
  const head = stmt.length > 65_536 ? stmt.slice(0, 65_536) : stmt;
  for (const re of ROLE_PATTERNS) {
    re.lastIndex = 0;
    for (const m of head.matchAll(re)) {
      for (const raw of (m[1] ?? "").split(/\s*,\s*/)) {
        const name = raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw.toLowerCase();
        if (name && !NOT_ROLES.has(name.toLowerCase()) && !/^(with|granted|cascade|restrict)$/i.test(name))
          into.add(name);
      }
    }
  }
  const sa = /\bSET\s+SESSION\s+AUTHORIZATION\s+'((?:[^']|'')+)'/i.exec(head);
  if (sa?.[1]) into.add(sa[1].replace(/''/g, "'"));
}

/** Feeds a plain dump line by line. */
export class SqlScanner {
  readonly roles = new Set<string>();
  readonly metaCommands: MetaCommand[] = [];
  #state: State = { kind: "normal" };
  #stdStrings = true;
  readonly hazards: SqlHazard[] = [];
  #stmt = "";
  /** The statement without the contents of strings, identifiers and comments. */
  #code = "";
  #stmtLine = 0;
  #line = 0;

  /** The first meta-command psql would run that is not on the allowed list. */
  get forbidden(): MetaCommand | undefined {
    return this.metaCommands.find((m) => !ALLOWED_META_COMMANDS.has(m.command));
  }

  /** Whether psql would see a meta-command `command` anywhere. */
  has(command: string): boolean {
    return this.metaCommands.some((m) => m.command === command);
  }

  /** Scans one line (without its newline). Returns a meta-command found on it, if any. */
  line(text: string): MetaCommand | undefined {
    this.#line++;
    if (this.#state.kind === "copy") {
      if (text === "\\.") this.#state = { kind: "normal" };
      return undefined;
    }
    let found: MetaCommand | undefined;
    let i = 0;
    while (i < text.length) {
      const s = this.#state;
      const ch = text[i]!;
      if (s.kind === "normal") {
        if (ch === "-" && text[i + 1] === "-") break;
        if (ch === "\\") {
          const m = /^\\([A-Za-z]+|[^\sA-Za-z])/.exec(text.slice(i));
          const command = m?.[1] ?? "";
          found ??= { line: this.#line, command, text: text.slice(i, i + 80) };
          this.metaCommands.push({ line: this.#line, command, text: text.slice(i, i + 80) });
          // psql hands the rest of the line to the meta-command
          break;
        }
        if (ch === "'") {
          const prev = text[i - 1];
          this.#state = { kind: "squote", escapes: !this.#stdStrings || prev === "E" || prev === "e" };
        } else if (ch === '"') this.#state = { kind: "dquote" };
        else if (ch === "/" && text[i + 1] === "*") {
          this.#state = { kind: "block", depth: 1 };
          i++;
        } else if (ch === "$") {
          const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i));
          const prev = text[i - 1] ?? " ";
          if (m && !/[A-Za-z0-9_]/.test(prev)) {
            this.#state = { kind: "dollar", tag: m[0] };
            this.#stmt += m[0];
            i += m[0].length;
            continue;
          }
        } else if (ch === ";") {
          this.#endStatement();
          i++;
          continue;
        }
      } else if (s.kind === "squote") {
        if (s.escapes && ch === "\\") {
          this.#stmt += text.slice(i, i + 2);
          i += 2;
          continue;
        }
        if (ch === "'") {
          if (text[i + 1] === "'") {
            this.#stmt += "''";
            i += 2;
            continue;
          }
          this.#state = { kind: "normal" };
        }
      } else if (s.kind === "dquote") {
        if (ch === '"') this.#state = { kind: "normal" };
      } else if (s.kind === "dollar") {
        if (ch === "$" && text.startsWith(s.tag, i)) {
          this.#state = { kind: "normal" };
          this.#stmt += s.tag;
          i += s.tag.length;
          continue;
        }
      } else if (s.kind === "block") {
        if (ch === "/" && text[i + 1] === "*") {
          s.depth++;
          i += 2;
          continue;
        }
        if (ch === "*" && text[i + 1] === "/") {
          i += 2;
          if (--s.depth === 0) this.#state = { kind: "normal" };
          continue;
        }
        i++;
        continue;
      }
      if (this.#stmt.length < 131_072) {
        if (this.#stmt.trim() === "") this.#stmtLine = this.#line;
        this.#stmt += ch;
        this.#code += s.kind === "normal" ? ch : "_";
      }
      i++;
    }
    if (this.#stmt.length < 131_072) {
      this.#stmt += "\n";
      this.#code += "\n";
    }
    return found;
  }

  #endStatement(): void {
    const stmt = this.#stmt.trim();
    const code = this.#code.trim();
    this.#stmt = "";
    this.#code = "";
    if (!stmt) return;
    this.#checkHazards(stmt, code);
    if (/^COPY\b[\s\S]*\bFROM\s+stdin\b/i.test(stmt)) this.#state = { kind: "copy" };
    const scs = /^SET\s+standard_conforming_strings\s*(?:=|TO)\s*'?(on|off)'?/i.exec(stmt);
    if (scs) this.#stdStrings = scs[1]!.toLowerCase() === "on";
    rolesInStatement(stmt, this.roles);
  }

  #checkHazards(stmt: string, code: string): void {
    const line = this.#stmtLine || this.#line;
    const add = (kind: SqlHazard["kind"], reason: string) => this.hazards.push({ line, kind, reason });
    if (/\bCOPY\b[\s\S]*\b(TO|FROM)\s+PROGRAM\b/i.test(code)) {
      add("defect", "COPY … PROGRAM (runs a shell command on the server's host)");
    }
    if (/^ALTER\s+SYSTEM\b/i.test(code)) add("defect", "ALTER SYSTEM (rewrites the server's configuration)");
    if (/^DO\b/i.test(code)) add("defect", "an anonymous code block (DO)");
    if (/^(SELECT|VALUES|CALL|EXECUTE|WITH)\b/i.test(code)) {
      for (const m of code.matchAll(/(?:\bpg_catalog\.)?\b([A-Za-z_][A-Za-z0-9_]*)\s*\(/g)) {
        const fn = m[1]!.toLowerCase();
        if (!DUMP_SELECT_FUNCTIONS.has(fn) && !/^(select|values|call|execute|with)$/.test(fn)) {
          add("defect", `a top-level statement calling ${fn}()`);
          break;
        }
      }
    }
    if (/\bLANGUAGE\s+"?c"?\b/i.test(code) && /^CREATE\b/i.test(code)) {
      const lib = /\bAS\s+'((?:[^']|'')*)'\s*,/i.exec(stmt)?.[1];
      if (lib !== undefined && !lib.startsWith("$libdir/")) {
        add(
          "refuse",
          `a C function loading ${lib} from outside $libdir (would run that library's code on the verifier host)`,
        );
      }
    }
  }

  /** The first hazard, if any. */
  get hazard(): SqlHazard | undefined {
    return this.hazards[0];
  }
}
