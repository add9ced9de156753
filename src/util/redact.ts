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
