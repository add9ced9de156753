/** The `evidence:` section: the bundle's signing key and the frameworks reports map to. */
import { z } from "zod";

/** Frameworks a report can map its evidence to (one data file each in src/report/frameworks). */
export const FRAMEWORK_IDS = ["iso27001", "soc2", "nist-800-53", "hipaa", "dora"] as const;
/** A framework id. */
export type FrameworkId = (typeof FRAMEWORK_IDS)[number];

/** Schema of `evidence:`. */
export const evidenceSchema = z
  .object({
    /** Ed25519 private key (PEM), usually `${file:./keys/attest-ed25519.pem}`; signs bundles. */
    signing_key: z.string().optional(),
    /** Frameworks `attest report` maps to when `--framework` is not given. */
    frameworks: z.array(z.enum(FRAMEWORK_IDS)).default([]),
  })
  .strict();

/** The resolved `evidence:` section. */
export type EvidenceConfig = z.infer<typeof evidenceSchema>;
