/** The OCI emulator for tests: start it, make keys it trusts, inspect what it saw. */
export { type OciEmulator, startOciEmulator } from "./emulator.js";
export { API_PREFIX } from "./request-handler.js";
export {
  createSigningKey,
  createTestKeys,
  fingerprintOf,
  type SigningKey,
  type TestKeys,
} from "./test-keys.js";
export type * from "./types.js";
export { ATTACHMENT_STATES, ATTACHMENT_TYPES, VOLUME_STATES } from "./types.js";
