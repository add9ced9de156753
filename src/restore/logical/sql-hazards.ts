/**
 * What one complete SQL statement of a dump says: SQL that would run code or touch files on
 * the server's host (pg_dump never writes it), and the role names the statement refers to.
 */

/**
 * A reason to stop a dump before psql runs it: SQL pg_dump never writes (`defect`), a C
 * library from outside $libdir or an encoding the scanner cannot read safely (`refuse`, the
 * verifier declines: `error`).
 */
export interface SqlHazard {
  line: number;
  kind: "defect" | "refuse";
  reason: string;
  /** A complete message, when the usual "contains … pg_dump never writes this" does not fit. */
  message?: string;
}

/**
 * Functions a top-level SELECT in pg_dump output calls: search_path, sequences (8.1 nests
 * pg_get_serial_sequence in setval), large objects, and pg_dump 18's statistics.
 */
const DUMP_SELECT_FUNCTIONS = new Set([
  "set_config",
  "setval",
  "pg_get_serial_sequence",
  "lo_create",
  "lo_open",
  "lowrite",
  "lo_close",
  "lo_unlink",
  "pg_restore_relation_stats",
  "pg_restore_attribute_stats",
]);

/**
 * Hazards of one statement. `stmt` is its text, `code` the same text with the contents of
 * strings, identifiers and comments blanked, so keywords are matched only where SQL sees them.
 */
export function statementHazards(stmt: string, code: string, line: number): SqlHazard[] {
  const out: SqlHazard[] = [];
  const add = (kind: SqlHazard["kind"], reason: string) => out.push({ line, kind, reason });
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
  return out;
}

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
