/** Throwaway OCI API signing keys and a matching ~/.oci/config-style file for tests. */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TrustedKey } from "./types.js";

/** An RSA key pair with its OCI fingerprint. */
export interface SigningKey {
  privateKeyPem: string;
  publicKeyPem: string;
  /** MD5 of the DER public key, colon-separated hex, as the OCI console shows it. */
  fingerprint: string;
}

/** Identity, key and config file of a test user. */
export interface TestKeys extends SigningKey {
  tenancyId: string;
  userId: string;
  region: string;
  profile: string;
  /** `tenancy/user/fingerprint`, the `keyId` of every signature. */
  keyId: string;
  /** What `startOciEmulator({ trustedKeys })` needs to accept this user. */
  trustedKey: TrustedKey;
  dir: string;
  configPath: string;
  keyPath: string;
  /** Removes the config and key files. */
  remove(): Promise<void>;
}

/** The OCI fingerprint of a public key. */
export function fingerprintOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: "spki", format: "der" });
  return createHash("md5")
    .update(der)
    .digest("hex")
    .replace(/(..)(?!$)/g, "$1:");
}

/** Generates an RSA 2048 key pair (PKCS#8 private key, as the OCI console downloads it). */
export function createSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey, fingerprint: fingerprintOf(publicKey) };
}

/** Creates a test user's key and writes `config` (profile DEFAULT) and `key.pem` into a temp dir. */
export async function createTestKeys(options: { region?: string; profile?: string } = {}): Promise<TestKeys> {
  const key = createSigningKey();
  const tenancyId = `ocid1.tenancy.oc1..${randomBytes(20).toString("hex")}`;
  const userId = `ocid1.user.oc1..${randomBytes(20).toString("hex")}`;
  const region = options.region ?? "sa-saopaulo-1";
  const profile = options.profile ?? "DEFAULT";
  const dir = await mkdtemp(join(tmpdir(), "attest-oci-keys-"));
  const keyPath = join(dir, "key.pem");
  const configPath = join(dir, "config");
  await writeFile(keyPath, key.privateKeyPem, { mode: 0o600 });
  const config = [
    `[${profile}]`,
    `user=${userId}`,
    `fingerprint=${key.fingerprint}`,
    `tenancy=${tenancyId}`,
    `region=${region}`,
    `key_file=${keyPath}`,
    "",
  ].join("\n");
  await writeFile(configPath, config, { mode: 0o600 });
  await chmod(dir, 0o700);
  const keyId = `${tenancyId}/${userId}/${key.fingerprint}`;
  return {
    ...key,
    tenancyId,
    userId,
    region,
    profile,
    keyId,
    trustedKey: { keyId, publicKeyPem: key.publicKeyPem },
    dir,
    configPath,
    keyPath,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
