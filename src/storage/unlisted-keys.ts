/**
 * Objects a listing leaves out (a key with a control character never becomes a backup id: it
 * would break log lines, mail subjects and CSV readers), gathered so the source says so in one
 * finding instead of losing them without a word.
 */
import type { Finding } from "../model.js";

/** How many of the left-out keys a finding names. */
const NAMED = 3;
/** How much of each named key a finding shows (a hostile store is not held to S3's 1,024 bytes). */
const KEY_CHARS = 200;

/** A key as a finding names it: JSON-quoted, DEL escaped too, cut to KEY_CHARS. */
function named(key: string): string {
  const cut = key.length > KEY_CHARS ? `${key.slice(0, KEY_CHARS)}…` : key;
  return JSON.stringify(cut).replace(/\u007f/g, "\\u007f");
}

/** The keys one source's listings left out. */
export class UnlistedKeys {
  #count = 0;
  readonly #named: string[] = [];
  readonly #why = new Set<string>();

  /** The listing's callback (`ListOptions.onUnlisted`). */
  readonly onUnlisted = (key: string, why: string): void => {
    this.#count += 1;
    this.#why.add(why);
    // JSON quoting shows a newline as \n: the key is named, never printed raw
    if (this.#named.length < NAMED) this.#named.push(named(key));
  };

  /** One warning naming the first few keys, or undefined when nothing was left out. */
  finding(source: string, where: string): Finding | undefined {
    if (this.#count === 0) return undefined;
    const more = this.#count > this.#named.length ? `, and ${this.#count - this.#named.length} more` : "";
    return {
      source,
      kind: "unlisted_objects",
      severity: "warning",
      message: `${this.#count} object(s) under ${where} are not listed as backups (${[...this.#why].join("; ")}): ${this.#named.join(", ")}${more}`,
    };
  }
}
