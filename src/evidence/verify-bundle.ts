/**
 * Verifies an evidence bundle with nothing but the archive and a public key: the manifest's
 * signature, every file's SHA-256, then the history chain from the period to the head.
 * Stops at the first thing that does not hold and names it.
 */
import type { KeyObject } from "node:crypto";
import {
  contentHash,
  HISTORY_FILE,
  MANIFEST_FILE,
  type Manifest,
  manifestSignatureHolds,
  SIGNATURE_FILE,
  sha256,
} from "./bundle-manifest.js";
import { checkSlice, parseSliceCsv } from "./history-slice.js";
import { readTarGz } from "./tar-archive.js";

/** The verdict on a bundle. */
export interface BundleVerdict {
  ok: boolean;
  /** The first thing that does not hold. */
  problem?: string;
  manifest?: Manifest;
  manifestSha256?: string;
  /** Files checked (the manifest's list). */
  files: number;
}

/**
 * Verifies `archive` against `key`. With `expectHead` (a chain head kept outside the
 * verifier host, e.g. mailed or scraped at the time), that head must be one of the carried
 * rows' hashes or the anchor: a history rewritten since would not contain it.
 */
export function verifyBundle(archive: Buffer, key: KeyObject, expectHead?: string): BundleVerdict {
  const no = (problem: string, extra: Partial<BundleVerdict> = {}): BundleVerdict => ({
    ok: false,
    problem,
    files: 0,
    ...extra,
  });
  let entries: ReturnType<typeof readTarGz>;
  try {
    entries = readTarGz(archive);
  } catch (err) {
    return no(`archive cannot be read: ${(err as Error).message}`);
  }
  const byPath = new Map<string, Buffer>();
  for (const e of entries) {
    if (byPath.has(e.path)) return no(`file ${e.path}: appears twice in the archive`);
    byPath.set(e.path, e.data);
  }
  const manifestBytes = byPath.get(MANIFEST_FILE);
  const signature = byPath.get(SIGNATURE_FILE);
  if (!manifestBytes) return no(`${MANIFEST_FILE} is missing`);
  if (!signature) return no(`${SIGNATURE_FILE} is missing`);
  if (!manifestSignatureHolds(manifestBytes, signature.toString("utf8"), key))
    return no("manifest signature does not verify (signed by another key, or the manifest was changed)");

  // signed, so its content is what the signer wrote; still read it defensively
  let manifest: Manifest;
  try {
    manifest = JSON.parse(manifestBytes.toString("utf8")) as Manifest;
    if (manifest.kind !== "attest-evidence-bundle" || !Array.isArray(manifest.files) || !manifest.history)
      throw new Error("not an Attest evidence manifest");
  } catch (err) {
    return no(`${MANIFEST_FILE}: ${(err as Error).message}`);
  }
  const manifestSha256 = sha256(manifestBytes);
  const known = { manifest, manifestSha256 };

  const listed = new Set<string>();
  for (const f of manifest.files) {
    listed.add(f.path);
    const data = byPath.get(f.path);
    if (!data) return no(`file ${f.path}: missing from the bundle`, known);
    if (sha256(data) !== f.sha256) return no(`file ${f.path}: sha256 differs`, known);
  }
  if (manifest.contentSha256 !== contentHash(manifest.files))
    return no(`${MANIFEST_FILE}: contentSha256 does not match its own file list`, known);
  for (const path of byPath.keys())
    if (path !== MANIFEST_FILE && path !== SIGNATURE_FILE && !listed.has(path))
      return no(`file ${path}: not listed in the manifest`, known);

  const csv = byPath.get(HISTORY_FILE);
  if (!csv) return no(`file ${HISTORY_FILE}: missing from the bundle`, known);
  let rows: ReturnType<typeof parseSliceCsv>;
  try {
    rows = parseSliceCsv(csv.toString("utf8"));
  } catch (err) {
    return no(`file ${HISTORY_FILE}: ${(err as Error).message}`, known);
  }
  const broken = checkSlice(rows, manifest.history);
  if (broken) return no(broken, known);
  if (expectHead) {
    const hashes = new Set([manifest.history.anchor, ...rows.map((r) => r.hash)]);
    if (!hashes.has(expectHead.trim().toLowerCase()))
      return no(
        `history: the chain head kept outside (${expectHead}) is not in the bundle's chain — the history was rewritten, or that head predates the period`,
        known,
      );
  }
  return { ok: true, files: manifest.files.length, ...known };
}
