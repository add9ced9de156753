/** Turns what the S3 client throws into a StorageError naming the S3 error code. */
import { S3ServiceException } from "@aws-sdk/client-s3";
import { coerceError } from "../../util/errors.js";
import { StorageError } from "../storage.js";

/** Codes a HEAD response (no body) stands for, by status. */
const HEAD_CODES: Record<number, string> = { 403: "AccessDenied", 404: "NotFound", 301: "PermanentRedirect" };

/** Longest part of the store's <Message> Attest repeats. */
export const MAX_S3_MESSAGE_CHARS = 200;

/** The first MAX_S3_MESSAGE_CHARS characters, control characters turned into spaces. */
function clip(text: string): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return flat.length > MAX_S3_MESSAGE_CHARS ? `${flat.slice(0, MAX_S3_MESSAGE_CHARS)}…` : flat;
}

/** `what` failed: the error says which S3 code (or network error) and which HTTP status. */
export function s3Error(err: unknown, what: string): StorageError {
  const e = coerceError(err);
  if (e instanceof StorageError) return e;
  if (e instanceof S3ServiceException) {
    const status = e.$metadata.httpStatusCode;
    let code = e.name;
    // a HEAD answer has no body to name its error: the SDK calls it by the status ("403")
    // (and a <Code> that is not a short identifier is not repeated either)
    if (/^\d+$/.test(code) || code === "Unknown" || !/^[A-Za-z][A-Za-z0-9._-]{0,63}$/.test(code))
      code = (status && HEAD_CODES[status]) || `HTTP${status ?? ""}`;
    // only the code, the status and the start of <Message> are kept: other fields of the error
    // document (an echoed canonical request, string-to-sign, a token) and the SDK's exception
    // (which carries them as properties) never reach a message, a log or a stored record
    const message = e.message && e.message !== e.name && e.message !== "UnknownError" ? clip(e.message) : "";
    const detail = message ? `: ${message}` : "";
    return new StorageError(`${what}: ${code} (HTTP ${status ?? "?"})${detail}`, code, status);
  }
  // a network or TLS failure: errno-style codes (ECONNREFUSED, SELF_SIGNED_CERT_IN_CHAIN, …)
  const code = (e as NodeJS.ErrnoException).code ?? e.name;
  return new StorageError(
    `${what}: ${code}${e.message && !e.message.includes(code) ? ` (${e.message})` : ""}`,
    code,
    undefined,
    {
      cause: e,
    },
  );
}
