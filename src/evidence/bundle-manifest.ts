/** The manifest of an evidence bundle: what it covers, every file's SHA-256, and its signature. */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import type { SliceInfo } from "./history-slice.js";

/** Names inside the archive that the manifest does not list (it cannot list itself). */
export const MANIFEST_FILE = "manifest.json";
/** The detached Ed25519 signature of manifest.json, base64. */
export const SIGNATURE_FILE = "manifest.sig";
/** The carried history rows. */
export const HISTORY_FILE = "history/history.csv";
/** The folder of the bundled compliance report, whose cover prints the content hash. */
export const REPORT_DIR = "report/";

/** One listed file. */
export interface ManifestFile {
  path: string;
  sha256: string;
  bytes: number;
}

/** The manifest document. */
export interface Manifest {
  kind: "attest-evidence-bundle";
  version: 1;
  organization: string;
  period: { from: string; to: string };
  createdAt: string;
  /** SHA-256 of the signer's public key (DER, SubjectPublicKeyInfo), to tell keys apart. */
  signer: string;
  history: SliceInfo;
  /**
   * SHA-256 over the list of every file outside report/ ({@link contentHash}): the bundled
   * report prints it on its cover, since it cannot print the hash of a manifest that lists it.
   */
  contentSha256: string;
  files: ManifestFile[];
}

/** Lowercase hex SHA-256. */
export const sha256 = (data: Buffer | string): string => createHash("sha256").update(data).digest("hex");

/** The content hash of a file list: path, SHA-256 and size of every file outside report/, in order. */
export function contentHash(files: readonly ManifestFile[]): string {
  const listed = files.filter((f) => !f.path.startsWith(REPORT_DIR)).map((f) => [f.path, f.sha256, f.bytes]);
  return sha256(JSON.stringify(listed));
}

/** The fingerprint of a public key as the manifest names it. */
export function keyFingerprint(key: KeyObject): string {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return sha256(pub.export({ type: "spki", format: "der" }));
}

/** Reads an Ed25519 private key from PEM text; throws naming what is wrong. */
export function ed25519PrivateKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new Error("evidence.signing_key is not a PEM private key", { cause: err });
  }
  if (key.asymmetricKeyType !== "ed25519")
    throw new Error(`evidence.signing_key is a ${key.asymmetricKeyType} key, not Ed25519`);
  return key;
}

/** Reads an Ed25519 public key from PEM text (a private key's public half is accepted too). */
export function ed25519PublicKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new Error("not a PEM public key", { cause: err });
  }
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`a ${key.asymmetricKeyType} key, not Ed25519`);
  return key;
}

/** Signs the manifest's exact bytes; returns the base64 signature. */
export function signManifest(bytes: Buffer, key: KeyObject): string {
  // Ed25519 hashes internally: the digest argument must be null
  return sign(null, bytes, key).toString("base64");
}

/** Whether `signature` (base64) is the key's signature of the manifest's exact bytes. */
export function manifestSignatureHolds(bytes: Buffer, signature: string, key: KeyObject): boolean {
  const sig = Buffer.from(signature.trim(), "base64");
  if (sig.length !== 64) return false;
  return verify(null, bytes, key, sig);
}
