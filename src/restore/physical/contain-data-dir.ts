/**
 * Keeps a restored data directory from reaching outside the sandbox through the paths a backup
 * names: symbolic links (pg_wal, pg_tblspc/OID, any other) and the tablespace_map that
 * PostgreSQL replays into pg_tblspc at start. Every tablespace ends up in a directory inside
 * the data directory, pg_wal becomes a real directory, other links are removed. Nothing a link
 * points at is opened: targets are compared as text with the data directory and with the
 * backup directory the data was copied from, and only the copy inside the sandbox is used.
 */
import { posix } from "node:path";
import type { Sandbox } from "../../runtimes/runtime.js";
import { VerifierError } from "../../util/errors.js";
import { sandboxSh, writeSandboxFile } from "./sandbox-shell.js";

/** Where tablespaces are placed inside the data directory. */
export const TABLESPACE_DIR = "attest_tablespaces";

/** How the data directory was filled, so link targets into the original can be mapped to the copy. */
export interface ContainOptions {
  /** Host path of the directory copied into the data directory (links into it mean the copy). */
  copiedFrom?: string;
  /** Other directories a restore tool wrote and Attest then moved into the data directory (`to`, relative). */
  moved?: ReadonlyArray<{ from: string; to: string }>;
  /** Tablespace OIDs whose content Attest put into TABLESPACE_DIR itself (tar members). */
  extractedTablespaces?: readonly string[];
  /** Leave tablespace_map as it is for now (pg_verifybackup still has to check it against the manifest). */
  keepMap?: boolean;
}

/** Where a link leads, in terms of the sandbox. */
export type LinkTarget = { kind: "inside"; rel: string } | { kind: "outside"; path: string };

/**
 * Resolves a link's target as text: `inside` with a path relative to the data directory when it
 * names something in the data directory (or in the copied original, whose copy is there),
 * `outside` otherwise. Links are never followed.
 */
export function linkTarget(
  dataDir: string,
  linkRel: string,
  target: string,
  mapped: ReadonlyArray<{ from: string; to: string }> = [],
): LinkTarget {
  const abs = posix.resolve(posix.join(dataDir, posix.dirname(linkRel)), target);
  for (const { from, to } of [{ from: dataDir, to: "." }, ...mapped]) {
    const r = posix.resolve(from);
    const rest = abs === r ? "" : abs.startsWith(`${r}/`) ? abs.slice(r.length + 1) : undefined;
    if (rest === undefined) continue;
    const rel = posix.normalize(posix.join(to, rest || "."));
    // a mapping never leads out of the data directory
    if (rel === ".." || rel.startsWith("../") || posix.isAbsolute(rel)) break;
    return { kind: "inside", rel };
  }
  return { kind: "outside", path: abs };
}

/** Parses tablespace_map: "OID PATH" lines, PATH with \\-escaped newline, return and backslash. */
export function parseTablespaceMap(text: string): Array<{ oid: string; path: string }> {
  const out: Array<{ oid: string; path: string }> = [];
  let line = "";
  const flush = () => {
    const m = /^(\d+) (.*)$/s.exec(line);
    if (m) out.push({ oid: m[1]!, path: m[2]!.replace(/\\(.)/gs, "$1") });
    line = "";
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\\" && i + 1 < text.length) {
      line += c + text[i + 1];
      i++;
    } else if (c === "\n") flush();
    else line += c;
  }
  if (line) flush();
  return out;
}

function shorten(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/**
 * Makes every path of the data directory stay inside it; returns notes for the record. Throws
 * VerifierError when a tablespace's content lies outside anything the sandbox was given.
 */
export async function containDataDir(sandbox: Sandbox, opts: ContainOptions = {}): Promise<string[]> {
  const d = sandbox.dataDir;
  const notes: string[] = [];
  // 1. links PostgreSQL never makes: removed (the count and a few names go into the record)
  const removed = await sandboxSh(
    sandbox,
    [
      'd=$1; cd "$d" || exit 1',
      'set -- . -mindepth 1 -type l ! -path ./pg_wal ! "(" -path "./pg_tblspc/*" ! -path "./pg_tblspc/*/*" ")"',
      'n=$(find "$@" -printf x | wc -c)',
      '[ "$n" -gt 0 ] || exit 0',
      'echo "$n"; find "$@" -printf "%P\\n" | head -n 3',
      'find "$@" -delete',
    ].join("\n"),
    [d],
  );
  const [count, ...names] = removed.stdout.split("\n").filter(Boolean);
  if (count)
    notes.push(
      `removed ${count} symbolic link(s) PostgreSQL does not make (${names.map(shorten).join(", ")}${Number(count) > names.length ? ", ..." : ""})`,
    );

  // 2. pg_wal and tablespace links: where do they lead?
  const listed = await sandboxSh(
    sandbox,
    'cd "$1" || exit 1; for f in pg_wal pg_tblspc/*; do if [ -L "$f" ]; then printf "%s\\0%s\\0" "$f" "$(readlink "$f")"; fi; done',
    [d],
  );
  const parts = listed.stdout.split("\0");
  const links: Array<{ rel: string; target: string }> = [];
  for (let i = 0; i + 1 < parts.length; i += 2) links.push({ rel: parts[i]!, target: parts[i + 1]! });

  const outside: string[] = [];
  for (const link of links) {
    const where = linkTarget(d, link.rel, link.target, [
      ...(opts.copiedFrom ? [{ from: opts.copiedFrom, to: "." }] : []),
      ...(opts.moved ?? []),
    ]);
    if (link.rel === "pg_wal") {
      notes.push(await realPgWal(sandbox, where));
      continue;
    }
    const oid = link.rel.slice("pg_tblspc/".length);
    const home = posix.join(TABLESPACE_DIR, oid);
    if (!/^\d+$/.test(oid)) {
      await sandboxSh(sandbox, 'cd "$1" && rm -f -- "$2"', [d, link.rel]);
      notes.push(`removed ${shorten(link.rel)}: not a tablespace link`);
      continue;
    }
    if (opts.extractedTablespaces?.includes(oid)) {
      await relink(sandbox, link.rel, home);
      continue;
    }
    if (where.kind === "inside" && where.rel !== home) {
      // a tablespace copied inside the backup (or written by a restore tool): moved into place, not copied again
      const r = await sandboxSh(
        sandbox,
        'cd "$1" || exit 1; [ -d "$2" ] && [ ! -L "$2" ] || exit 3; mkdir -p "$(dirname "$3")" && rm -rf -- "$3" && mv -- "$2" "$3"',
        [d, where.rel, home],
        { allowFailure: true },
      );
      if (r.code === 0) {
        await relink(sandbox, link.rel, home);
        notes.push(`tablespace ${oid} found at ${shorten(where.rel)} in the restored copy: moved to ${home}`);
        continue;
      }
    } else if (where.kind === "inside") {
      continue;
    }
    outside.push(`${oid} -> ${shorten(where.kind === "outside" ? where.path : posix.join(d, where.rel))}`);
  }
  if (outside.length)
    throw new VerifierError(
      `tablespace link(s) lead out of the backup (${outside.join(", ")}): Attest reads no path a backup names; ` +
        "keep each tablespace's copy inside the backup directory (pg_basebackup -Ft, or -Fp with -T pointing inside it)",
    );

  // 3. pg_tblspc must be a directory (a removed link, a missing one)
  await sandboxSh(sandbox, 'cd "$1" && { [ -d pg_tblspc ] || mkdir pg_tblspc; }', [d]);
  // a tar backup names its tablespaces only in tablespace_map: their links are made here
  for (const oid of opts.extractedTablespaces ?? []) {
    if (!links.some((l) => l.rel === `pg_tblspc/${oid}`))
      await relink(sandbox, `pg_tblspc/${oid}`, posix.join(TABLESPACE_DIR, oid));
  }

  // 4. tablespace_map: PostgreSQL rebuilds pg_tblspc from it at start, so it names sandbox paths only
  if (opts.keepMap) return notes;
  const map = await sandboxSh(
    sandbox,
    'cd "$1" || exit 1; if [ -L tablespace_map ]; then rm -f tablespace_map; elif [ -f tablespace_map ]; then head -c 1048576 tablespace_map; fi',
    [d],
  );
  if (map.stdout) {
    const entries = parseTablespaceMap(map.stdout);
    const already = entries.every((e) => e.path === posix.join(d, TABLESPACE_DIR, e.oid));
    const lines: string[] = [];
    for (const e of entries) {
      const home = posix.join(d, TABLESPACE_DIR, e.oid);
      await sandboxSh(sandbox, 'mkdir -p "$1"', [home]);
      lines.push(`${e.oid} ${home}`);
    }
    await writeSandboxFile(
      sandbox,
      posix.join(d, "tablespace_map"),
      lines.length ? `${lines.join("\n")}\n` : "",
    );
    if (entries.length && !already)
      notes.push(
        `tablespace_map rewritten: ${entries.map((e) => `${e.oid} -> ${TABLESPACE_DIR}/${e.oid}`).join(", ")} (the backup named ${entries
          .map((e) => shorten(e.path))
          .join(", ")})`,
      );
  }
  return notes;
}

async function relink(sandbox: Sandbox, linkRel: string, homeRel: string): Promise<void> {
  const d = sandbox.dataDir;
  await sandboxSh(sandbox, 'cd "$1" || exit 1; mkdir -p "$3" && rm -f -- "$2" && ln -s -- "$1/$3" "$2"', [
    d,
    linkRel,
    homeRel,
  ]);
}

/** Replaces a pg_wal link by a real directory: the copy's WAL when the link led into it, else empty. */
async function realPgWal(sandbox: Sandbox, where: LinkTarget): Promise<string> {
  const d = sandbox.dataDir;
  if (where.kind === "inside" && where.rel !== "." && where.rel !== "pg_wal") {
    const r = await sandboxSh(
      sandbox,
      'cd "$1" || exit 1; [ -d "$2" ] && [ ! -L "$2" ] || exit 3; rm -f pg_wal && mv -- "$2" pg_wal',
      [d, where.rel],
      { allowFailure: true },
    );
    if (r.code === 0) return `pg_wal was a link to ${shorten(where.rel)} inside the backup: moved into place`;
  }
  await sandboxSh(sandbox, 'cd "$1" && rm -f pg_wal && mkdir -m 700 pg_wal', [d]);
  const said = where.kind === "outside" ? where.path : where.rel;
  return `pg_wal was a link to ${shorten(said)}: replaced by an empty directory inside the sandbox (WAL comes from the archive)`;
}
