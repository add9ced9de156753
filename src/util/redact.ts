/** Secret redaction: every resolved secret value is registered here and masked on output. */

const secrets = new Set<string>();

/** Registers a secret value; shorter than 4 characters is not worth masking (too many false hits). */
export function registerSecret(value: string): void {
  if (value.length >= 4) secrets.add(value);
}

/** Replaces every registered secret in `text` with `***`. */
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join("***");
  }
  // connection strings carry passwords even when they were never registered
  return out.replace(/(postgres(?:ql)?:\/\/[^:/@\s]+:)[^@\s]+@/g, "$1***@");
}

/**
 * A copy of `value` with `redact()` applied to every string in it (object keys too), for records
 * about to be stored: masking the values rather than the serialized text keeps JSON and CSV
 * structure intact, and finds a secret that serialization would have escaped.
 */
export function redactDeep<T>(value: T): T {
  if (typeof value === "string") return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v)) as T;
  if (value !== null && typeof value === "object" && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[redact(k)] = redactDeep(v);
    return out as T;
  }
  return value;
}
