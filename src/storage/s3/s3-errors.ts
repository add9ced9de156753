/** Turns what the S3 client throws into a StorageError naming the S3 error code. */
import { S3ServiceException } from "@aws-sdk/client-s3";
import { coerceError } from "../../util/errors.js";
import { StorageError } from "../storage.js";

/** Codes a HEAD response (no body) stands for, by status. */
const HEAD_CODES: Record<number, string> = { 403: "AccessDenied", 404: "NotFound", 301: "PermanentRedirect" };

/** `what` failed: the error says which S3 code (or network error) and which HTTP status. */
export function s3Error(err: unknown, what: string): StorageError {
  const e = coerceError(err);
  if (e instanceof StorageError) return e;
  if (e instanceof S3ServiceException) {
    const status = e.$metadata.httpStatusCode;
    let code = e.name;
    // a HEAD answer has no body to name its error: the SDK calls it by the status ("403")
    if (/^\d+$/.test(code) || code === "Unknown")
      code = (status && HEAD_CODES[status]) || `HTTP${status ?? ""}`;
    const detail = e.message && e.message !== e.name && e.message !== "UnknownError" ? `: ${e.message}` : "";
    return new StorageError(`${what}: ${code} (HTTP ${status ?? "?"})${detail}`, code, status, { cause: e });
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
