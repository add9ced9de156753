/** Reads `pgbackrest info --output=json` into Backup records and static findings (pure). */
import type { Backup, Finding, PgbackrestDetail } from "../../model.js";

/** The part of one backup in the info JSON that Attest reads. */
interface InfoBackup {
  label: string;
  type: string;
  error?: boolean;
  prior?: string | null;
  reference?: string[] | null;
  timestamp: { start: number; stop: number };
  lsn?: { start?: string; stop?: string };
  archive?: { start?: string | null; stop?: string | null };
  info?: { size?: number; delta?: number; repository?: { size?: number; delta?: number } };
  database?: { id: number };
}

/** One stanza in the info JSON. */
interface InfoStanza {
  name: string;
  status: { code: number; message: string };
  /** Per repository: status 99 ("other") keeps its reason here only. */
  repo?: Array<{ key?: number; cipher?: string; status?: { code?: number; message?: string } }>;
  backup?: InfoBackup[];
  archive?: Array<{ id: string; min?: string | null; max?: string | null; database?: { id: number } }>;
  db?: Array<{ id: number; "system-id": number; version: string }>;
}

/** What one `info` call says about a stanza. */
export interface StanzaInfo {
  backups: Backup[];
  findings: Finding[];
  /** Archive ranges per database id ("15-1" → min/max segment). */
  archives: Array<{ id: string; dbId?: number; min?: string; max?: string }>;
}

/** How the Backup records of one stanza are labelled. */
export interface InfoContext {
  source: string;
  stanza: string;
  /** Where a backup set is, given its label (a repository path, or a descriptive URI). */
  locate(label: string): string;
}

const BACKUP_TYPES = ["full", "diff", "incr"] as const;

/** pgBackRest's error classes that say the store could not be reached or refused Attest's keys. */
const STORE_ERROR =
  /\[(ProtocolError|HostConnectError|HostInvalidError|CryptoError|ServiceError|ProtocolTimeoutError)\]/;

/**
 * Why the repository could not be read when that is the verifier's side (credentials, endpoint,
 * TLS, connection), named without the store's response: pgBackRest prints the response content,
 * and a SignatureDoesNotMatch body echoes the canonical request with the session token. Only the
 * S3 `<Code>`, the HTTP status, or the first line of a connect/TLS error is kept.
 */
export function storeAccessProblem(text: string, stanza: string): string | undefined {
  let doc: InfoStanza[];
  try {
    doc = JSON.parse(text) as InfoStanza[];
  } catch {
    return undefined;
  }
  const st = Array.isArray(doc) ? doc.find((s) => s.name === stanza) : undefined;
  if (!st || st.status?.code === 0) return undefined;
  for (const repo of st.repo ?? []) {
    const msg = repo.status?.message ?? "";
    const cls = STORE_ERROR.exec(msg)?.[1];
    if (!cls) continue;
    const where = `repo${repo.key ?? ""}`;
    const code = /<Code>([A-Za-z][A-Za-z0-9.]{0,63})<\/Code>/.exec(msg)?.[1];
    const http = /HTTP request failed with (\d{3})(?: \(([A-Za-z ]{1,40})\))?/.exec(msg);
    const status = http ? `HTTP ${http[1]}${http[2] ? ` ${http[2]}` : ""}` : undefined;
    if (code) return `${where}: the store answered ${code}${status ? ` (${status})` : ""}`;
    if (cls === "ProtocolError" || cls === "ServiceError")
      return `${where}: the store refused the request (${status ?? cls})`;
    // a connect or TLS error names host and reason on its first line, nothing of a response
    const line = msg.split("\n")[0]!.replace(/\s+/g, " ").slice(0, 240);
    return `${where}: ${line}`;
  }
  return undefined;
}

/** Parses info JSON text (system ids are read from the text: they exceed 2^53). */
export function parseInfo(text: string, ctx: InfoContext): StanzaInfo {
  const doc = JSON.parse(text) as InfoStanza[];
  const stanza = doc.find((s) => s.name === ctx.stanza);
  const findings: Finding[] = [];
  const base = { source: ctx.source, series: ctx.stanza };
  if (!stanza) {
    findings.push({
      ...base,
      kind: "stanza_missing",
      severity: "critical",
      message: `pgbackrest info does not list stanza ${ctx.stanza}`,
    });
    return { backups: [], findings, archives: [] };
  }
  if (stanza.status.code !== 0) {
    findings.push({
      ...base,
      kind: "stanza_status",
      severity: "critical",
      message: `pgbackrest reports stanza ${ctx.stanza} status ${stanza.status.code}: ${stanza.status.message}`,
    });
  }
  const systemIds = [...text.matchAll(/"id":(\d+),"repo-key":\d+,"system-id":(\d+)/g)];
  const sysIdOf = (dbId: number) => systemIds.find((m) => Number(m[1]) === dbId)?.[2];
  const archives = (stanza.archive ?? []).map((a) => ({
    id: a.id,
    ...(a.database ? { dbId: a.database.id } : {}),
    ...(a.min ? { min: a.min } : {}),
    ...(a.max ? { max: a.max } : {}),
  }));
  const backups: Backup[] = [];
  for (const b of stanza.backup ?? []) {
    const type = (BACKUP_TYPES as readonly string[]).includes(b.type) ? b.type : "unknown";
    const db = stanza.db?.find((d) => d.id === b.database?.id);
    const labels: Record<string, string> = {
      tool: "pgbackrest",
      stanza: ctx.stanza,
      backupType: type,
      startTime: new Date(b.timestamp.start * 1000).toISOString(),
    };
    if (b.prior) labels.prior = b.prior;
    if (b.reference?.length) labels.references = b.reference.join(",");
    if (b.info?.size !== undefined) labels.dbSize = String(b.info.size);
    if (b.info?.delta !== undefined) labels.dbDelta = String(b.info.delta);
    if (b.info?.repository?.delta !== undefined) labels.repoDelta = String(b.info.repository.delta);
    if (b.archive?.start) labels.archiveStartWal = b.archive.start;
    if (b.archive?.stop) labels.archiveStopWal = b.archive.stop;
    const arch = archives.find((a) => a.dbId === b.database?.id);
    if (arch?.min) labels.archiveMin = arch.min;
    const detail: PgbackrestDetail = { kind: "pgbackrest", ...(arch?.max ? { archiveMax: arch.max } : {}) };
    const sysId = b.database ? sysIdOf(b.database.id) : undefined;
    if (sysId) labels.systemIdentifier = sysId;
    const major = db ? Number.parseInt(db.version, 10) : Number.NaN;
    const timeline = b.archive?.start ? Number.parseInt(b.archive.start.slice(0, 8), 16) : 1;
    backups.push({
      source: ctx.source,
      id: b.label,
      series: ctx.stanza,
      family: "physical",
      format: `pgbackrest-${type}`,
      createdAt: new Date(b.timestamp.stop * 1000).toISOString(),
      createdAtOrigin: "catalog",
      // the repository bytes a restore of this set reads (its own files plus those it references)
      sizeBytes: b.info?.repository?.size ?? b.info?.size ?? 0,
      ...(Number.isFinite(major) ? { pgMajor: major } : {}),
      location: ctx.locate(b.label),
      // a WAL archive makes the PITR planner target the archive's end and sample times
      walArchive: { location: `pgbackrest:${ctx.stanza}` },
      ...(b.lsn?.start
        ? {
            walRange: {
              timeline,
              startLsn: b.lsn.start,
              ...(b.lsn.stop ? { stopLsn: b.lsn.stop } : {}),
              ...(b.archive?.start ? { startWal: b.archive.start } : {}),
              ...(b.archive?.stop ? { stopWal: b.archive.stop } : {}),
            },
          }
        : {}),
      ...(b.error
        ? {
            problem:
              "pgbackrest flags this backup with errors (a file changed or failed its checksum during the backup)",
          }
        : {}),
      detail,
      labels,
    });
  }
  findings.push(...walFindings(ctx, backups, archives));
  backups.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  return { backups, findings, archives };
}

/** Archive ranges, and backups whose WAL lies outside them (they cannot become consistent). */
function walFindings(
  ctx: InfoContext,
  backups: readonly Backup[],
  archives: StanzaInfo["archives"],
): Finding[] {
  const findings: Finding[] = [];
  const base = { source: ctx.source, series: ctx.stanza };
  if (backups.length > 0 && archives.every((a) => !a.min || !a.max)) {
    findings.push({
      ...base,
      kind: "wal_archive_missing",
      severity: "critical",
      message: `stanza ${ctx.stanza} has backups but no archived WAL`,
    });
    return findings;
  }
  for (const b of backups) {
    const start = b.walRange?.startWal;
    const stop = b.walRange?.stopWal;
    if (!start || !stop) continue;
    // WAL names of one timeline sort like their positions; a backup needs start..stop archived
    const covered = archives.some((a) => a.min && a.max && a.min <= start && stop <= a.max);
    if (!covered) {
      const ranges = archives.map((a) => `${a.id}: ${a.min ?? "?"}..${a.max ?? "?"}`).join(", ");
      findings.push({
        ...base,
        backupId: b.id,
        kind: "wal_missing_for_backup",
        severity: "critical",
        message: `${b.id} needs WAL ${start}..${stop}, which lies outside the archive (${ranges || "empty"})`,
      });
    }
  }
  return findings;
}
