/** The configuration as a bundle carries it: resolved, every secret masked. */
import type { Config } from "../config/schema.js";
import { redact } from "../util/redact.js";

// keys whose values are secrets even when written inline (never through a reference)
const SECRET_KEY = /pass|secret|token|key|auth|credential|webhook|url/i;
// keys that hold where a secret is, not the secret
const PATH_KEY = /_file$|_dir$|^path$/;

function mask(value: unknown, key: string): unknown {
  if (typeof value === "string") return SECRET_KEY.test(key) && !PATH_KEY.test(key) ? "***" : value;
  if (Array.isArray(value)) return value.map((v) => mask(v, key));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = mask(v, k);
    return out;
  }
  return value;
}

/** The resolved configuration as JSON text, secrets masked by key and by registered value. */
export function redactedConfigJson(config: Config): string {
  return `${redact(JSON.stringify(mask(config, ""), null, 2))}\n`;
}
