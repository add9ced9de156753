/**
 * Reads the comment header pg_dump and pg_dumpall write at the start of a plain SQL dump:
 * versions, start time (with the dumping host's zone), and the database a `-C` dump creates.
 */

/** What the first lines of a plain SQL dump say. */
export interface PlainHeader {
  kind: "database" | "cluster";
  serverVersion?: string;
  dumpVersion?: string;
  startedAt?: Date;
  dbname?: string;
  /** A pg_dumpall file that holds databases, not only roles and tablespaces (--globals-only). */
  databases?: boolean;
  /**
   * The dump creates the plpgsql language itself (`CREATE PROCEDURAL LANGUAGE plpgsql;`, as
   * pg_dump 8.x writes near its top): on PostgreSQL 9.0 and later that one statement fails
   * with "language "plpgsql" already exists", the error psql prints when it is loaded by hand.
   */
  createsPlpgsql?: boolean;
}

/**
 * UTC offsets (minutes) of the zone abbreviations strftime's %Z gives on the hosts pg_dump
 * runs on. An abbreviation not listed (or ambiguous, like IST) is read as UTC.
 */
const ZONES: Record<string, number> = {
  UTC: 0,
  GMT: 0,
  Z: 0,
  WET: 0,
  WEST: 60,
  BST: 60,
  CET: 60,
  CEST: 120,
  MET: 60,
  MEST: 120,
  EET: 120,
  EEST: 180,
  MSK: 180,
  SAST: 120,
  EST: -300,
  EDT: -240,
  CST: -360,
  CDT: -300,
  MST: -420,
  MDT: -360,
  PST: -480,
  PDT: -420,
  AKST: -540,
  AKDT: -480,
  HST: -600,
  JST: 540,
  KST: 540,
  AWST: 480,
  ACST: 570,
  ACDT: 630,
  AEST: 600,
  AEDT: 660,
  NZST: 720,
  NZDT: 780,
};

/** Minutes east of UTC for a %Z zone: an abbreviation, or a numeric `+03` / `-0530`. */
export function zoneOffsetMinutes(zone: string | undefined): number | undefined {
  if (!zone) return 0;
  const numeric = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone);
  if (numeric) return (numeric[1] === "-" ? -1 : 1) * (Number(numeric[2]) * 60 + Number(numeric[3] ?? 0));
  return ZONES[zone.toUpperCase()];
}

/** An identifier as pg_dump writes it: bare, or double-quoted with "" for a quote. */
function identifier(raw: string): string {
  return raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw;
}

/** The database a `-C` dump creates or connects to. */
function databaseName(text: string): string | undefined {
  const create = /^CREATE DATABASE\s+("(?:[^"]|"")+"|[^\s;"]+)/m.exec(text)?.[1];
  if (create) return identifier(create);
  const reuse = /^\\connect -reuse-previous=on "((?:[^"]|"")*)"\s*$/m.exec(text)?.[1];
  if (reuse) {
    const value = /^dbname='((?:[^'\\]|\\.)*)'$/.exec(reuse.replace(/""/g, '"'))?.[1];
    if (value !== undefined) return value.replace(/\\(.)/g, "$1");
  }
  const bare = /^\\connect\s+("(?:[^"]|"")+"|[^\s"-][^\s]*)\s*$/m.exec(text)?.[1];
  return bare ? identifier(bare) : undefined;
}

/**
 * Parses the head of a plain dump (its raw bytes: they are decoded in the encoding the dump
 * declares); undefined when it is not one.
 */
export function parsePlainHeader(head: Buffer): PlainHeader | undefined {
  const raw = head.toString("latin1");
  const kind = /^--\s*PostgreSQL database cluster dump\s*$/m.test(raw)
    ? "cluster"
    : /^--\s*PostgreSQL database dump\s*$/m.test(raw)
      ? "database"
      : undefined;
  if (!kind) return undefined;
  const encoding = /^SET client_encoding = '([^']+)';/m.exec(raw)?.[1]?.toUpperCase().replace(/[-_]/g, "");
  // names and versions in a UTF-8 dump are UTF-8; the single-byte encodings pg_dump declares
  // most (LATIN1, WIN1252, SQL_ASCII) read as latin1 keep every byte
  const text = !encoding || encoding === "UTF8" || encoding === "UNICODE" ? head.toString("utf8") : raw;
  const h: PlainHeader = { kind };
  h.serverVersion = /^--\s*Dumped from database version\s+(.+)$/m.exec(text)?.[1]?.trim();
  h.dumpVersion = /^--\s*Dumped by pg_dump(?:all)? version\s+(.+)$/m.exec(text)?.[1]?.trim();
  const started = /^--\s*Started on\s+(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\s+(\S+))?/m.exec(text);
  if (started) {
    const offset = zoneOffsetMinutes(started[3]) ?? 0;
    const asUtc = Date.parse(`${started[1]}T${started[2]}Z`);
    if (!Number.isNaN(asUtc)) h.startedAt = new Date(asUtc - offset * 60_000);
  }
  // a pg_dumpall file connects to every database it holds: none of them names the file
  if (kind === "database") h.dbname = databaseName(text);
  if (/^CREATE (?:PROCEDURAL )?LANGUAGE plpgsql;\s*$/m.test(raw)) h.createsPlpgsql = true;
  // pg_dumpall connects to each database it dumps; --globals-only output never does
  if (kind === "cluster" && /^\\connect /m.test(raw)) h.databases = true;
  return h;
}
