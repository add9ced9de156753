/**
 * The psql meta-commands genuine pg_dump / pg_dumpall output contains, in exactly the shapes
 * they write them. psql hands the rest of a line to a meta-command, where another backslash
 * starts a further command (`\connect db \! sh`), backticks run a shell and a conninfo can
 * name another server, so a line is accepted only when it matches one of these shapes whole.
 */

/** A meta-command line psql would execute. */
export interface MetaCommand {
  line: number;
  /** The command name without the backslash (`connect`, `!`, …). */
  command: string;
  /** The start of the line from the backslash, for messages. */
  text: string;
  /** Byte offset of the backslash in the dump. */
  start: number;
  /** Byte offset just past the line (its newline included). */
  end: number;
  /** Why this line is refused, when it is. */
  problem?: string;
}

/** Meta-commands genuine pg_dump / pg_dumpall output contains. */
export const ALLOWED_META_COMMANDS = new Set(["connect", "c", "restrict", "unrestrict", "encoding"]);

/** A database name pg_dump writes bare (`\connect app`): no quoting, no `=`, no URI. */
const BARE_NAME = /^[A-Za-z0-9_]+$/;

/**
 * Why a meta-command line is refused, or undefined when it is one pg_dump writes.
 * `body` is the line from the backslash, without its newline.
 */
export function metaProblem(command: string, body: string): string | undefined {
  if (!ALLOWED_META_COMMANDS.has(command)) return "pg_dump never writes it";
  const text = body.replace(/[\r\t ]+$/, "");
  const args = text.slice(command.length + 1);
  if (command === "restrict" || command === "unrestrict") {
    return /^ [A-Za-z0-9]+$/.test(args) ? undefined : "its argument is not a single restrict key";
  }
  if (command === "encoding") {
    return /^ [A-Za-z0-9_]+$/.test(args) ? undefined : "its argument is not a single encoding name";
  }
  return connectProblem(args);
}

/**
 * pg_dump writes `\connect name` for a plain name, `\connect -reuse-previous=on
 * "dbname='…'"` otherwise (since the 2016 fixes; older versions `\connect "name"`).
 */
function connectProblem(args: string): string | undefined {
  if (!args.startsWith(" ")) return "it has no database argument";
  const rest = args.slice(1);
  if (BARE_NAME.test(rest)) return undefined;
  const reuse = /^-reuse-previous=on "((?:[^"]|"")*)"$/.exec(rest);
  if (reuse) {
    const conninfo = reuse[1]!.replace(/""/g, '"');
    if (/^dbname='(?:[^'\\]|\\.)*'$/.test(conninfo)) return undefined;
    return `its connection string is not a single dbname (${conninfo.slice(0, 60)}); only the sandbox may be reached`;
  }
  const quoted = /^"((?:[^"]|"")*)"$/.exec(rest);
  if (quoted) {
    const name = quoted[1]!.replace(/""/g, '"');
    // psql reads a name with `=` or a URI prefix as a connection string
    if (!name.includes("=") && !/^postgres(?:ql)?:\/\//i.test(name)) return undefined;
    return "its quoted argument is a connection string; only the sandbox may be reached";
  }
  return "its arguments are not the single database name pg_dump writes (a further meta-command, a host, port or conninfo)";
}
