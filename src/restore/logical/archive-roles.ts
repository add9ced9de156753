/**
 * The roles a pg_dump archive refers to, read from its table of contents instead of from a
 * `pg_restore --schema-only` pass (a confined process per drill, for SQL the TOC already holds):
 * every entry's owner (pg_restore makes it the owner with `ALTER … OWNER TO`) and the roles its
 * SQL names (GRANT, REVOKE, ALTER DEFAULT PRIVILEGES, policies). That SQL goes through the same
 * scanner rules as before, so an archive whose SQL pg_dump never writes is still refused.
 */
import { readToc, type TocEntry } from "./archive-toc.js";
import { decodeAs } from "./dump-encoding.js";
import { scanProblem } from "./guard-stream.js";
import { SqlScanner } from "./sql-scanner.js";

/**
 * Ends each entry's SQL as pg_restore does by sending it alone: a statement left open by one
 * entry must not hide the next entry's first statement from the hazard rules.
 */
const ENTRY_END = Buffer.from("\n;\n");

/**
 * The roles archive `path` (custom, directory or tar) refers to; throws the scanner's refusal
 * when its SQL holds what pg_dump never writes. Undefined when this reader cannot read the TOC
 * (an unknown archive version, a file Attest may not open): the caller asks pg_restore then.
 */
export function archiveRoles(path: string, format: string, id: string): Set<string> | undefined {
  let entries: TocEntry[];
  try {
    entries = readToc(path, format);
  } catch {
    return undefined;
  }
  const scanner = new SqlScanner();
  // owners are decoded in the encoding the archive declared before them (its ENCODING entry)
  const owners: Array<{ bytes: Buffer; encoding: string }> = [];
  for (const e of entries) {
    if (e.defn) {
      scanner.write(Buffer.from(e.defn, "latin1"));
      scanner.write(ENTRY_END);
    }
    // pg_restore's ALTER … OWNER TO is for entries with a drop statement (not data entries)
    if (e.owner && e.droppable)
      owners.push({ bytes: Buffer.from(e.owner, "latin1"), encoding: scanner.encoding });
  }
  scanner.end();
  const problem = scanProblem(scanner, `${id} (archive TOC)`);
  if (problem) throw problem;
  const roles = new Set(scanner.roles);
  for (const o of owners) roles.add(decodeAs(o.encoding, o.bytes));
  return roles;
}
