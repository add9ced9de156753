/**
 * Builds a signed evidence bundle of a period: the history rows and the links to the head,
 * the run and evidence documents and PDFs those rows name, the redacted configuration, and
 * a manifest of every file's SHA-256 signed with the configured Ed25519 key.
 */
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import type { Config } from "../config/schema.js";
import type { HistoryRecord } from "../history/history-record.js";
import {
  contentHash,
  ed25519PrivateKey,
  HISTORY_FILE,
  keyFingerprint,
  MANIFEST_FILE,
  type Manifest,
  REPORT_DIR,
  SIGNATURE_FILE,
  sha256,
  signManifest,
} from "./bundle-manifest.js";
import { sliceCsv, sliceHistory } from "./history-slice.js";
import { redactedConfigJson } from "./redacted-config.js";
import { type ArchiveEntry, writeTarGz } from "./tar-archive.js";

/** What an export needs. */
export interface ExportInput {
  config: Config;
  /** The whole history, as read from the store. */
  history: readonly HistoryRecord[];
  from: Date;
  to: Date;
  now: Date;
  /** Renders the period's compliance report, given the content hash its cover prints; files go under report/. */
  report?: (contentSha256: string) => Promise<ArchiveEntry[]>;
}

/** The archive and what it holds. */
export interface ExportedBundle {
  archive: Buffer;
  manifest: Manifest;
  /** SHA-256 of manifest.json's bytes (what a cover or a mail can quote). */
  manifestSha256: string;
}

/** A file under the reports folder, if it exists and stays inside it. */
function reportsFile(reportsDir: string, rel: string): Buffer | undefined {
  const file = resolve(reportsDir, rel);
  const inside = relative(resolve(reportsDir), file);
  // an evidence column is data: never follow it out of the reports folder
  if (inside === "" || inside.startsWith("..") || isAbsolute(inside)) return undefined;
  return existsSync(file) ? readFileSync(file) : undefined;
}

/** Builds the bundle of the period; throws when no signing key is configured. */
export async function exportBundle(input: ExportInput): Promise<ExportedBundle> {
  const { config, from, to, now } = input;
  const pem = config.evidence?.signing_key;
  if (!pem) throw new Error("evidence.signing_key is not set: a bundle cannot be signed without it");
  const key = ed25519PrivateKey(pem);
  const slice = sliceHistory(input.history, from, to);
  const period = slice.rows.slice(0, slice.info.periodRows);
  const reportsDir = config.reports.dir;

  const entries: ArchiveEntry[] = [{ path: HISTORY_FILE, data: Buffer.from(sliceCsv(slice.rows)) }];
  const runs = new Map<string, string>();
  for (const r of period) runs.set(r.runId, r.runKind);
  for (const [id, kind] of runs) {
    const safe = id.replace(/[^A-Za-z0-9._-]+/g, "_");
    const doc = reportsFile(reportsDir, `runs/${id}.json`);
    if (doc) entries.push({ path: `runs/${safe}.json`, data: doc });
    // the name deliver.ts's reportPdfPath gives a run's PDF (not imported: it pulls in pdfkit)
    const pdf = reportsFile(reportsDir, `pdf/attest-${kind}-${safe}.pdf`);
    if (pdf) entries.push({ path: `pdf/attest-${kind}-${safe}.pdf`, data: pdf });
  }
  const seen = new Set<string>();
  for (const r of period) {
    if (r.recordType !== "drill" || !r.evidence || seen.has(r.evidence)) continue;
    seen.add(r.evidence);
    const doc = reportsFile(reportsDir, r.evidence);
    if (doc) entries.push({ path: relative(reportsDir, resolve(reportsDir, r.evidence)), data: doc });
  }
  entries.push({ path: "config/attest.json", data: Buffer.from(redactedConfigJson(config)) });
  const list = (es: readonly ArchiveEntry[]) =>
    es.map((e) => ({ path: e.path, sha256: sha256(e.data), bytes: e.data.length }));
  const content = contentHash(list(entries));
  for (const e of (await input.report?.(content)) ?? [])
    entries.push({ path: `${REPORT_DIR}${e.path}`, data: e.data });

  const manifest: Manifest = {
    kind: "attest-evidence-bundle",
    version: 1,
    organization: config.organization.name,
    period: { from: from.toISOString(), to: to.toISOString() },
    createdAt: now.toISOString(),
    signer: keyFingerprint(key),
    history: slice.info,
    contentSha256: content,
    files: list(entries),
  };
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const signature = signManifest(manifestBytes, key);
  const archive = writeTarGz(
    [
      { path: MANIFEST_FILE, data: manifestBytes },
      { path: SIGNATURE_FILE, data: Buffer.from(`${signature}\n`) },
      ...entries,
    ],
    Math.floor(now.getTime() / 1000),
  );
  return { archive, manifest, manifestSha256: sha256(manifestBytes) };
}
