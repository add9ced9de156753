/** The `evidence:` section: the bundle's signing key and the frameworks reports map to. */
import { z } from "zod";
import { FRAMEWORK_IDS } from "./framework-ids.js";

export { FRAMEWORK_IDS, type FrameworkId } from "./framework-ids.js";

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
