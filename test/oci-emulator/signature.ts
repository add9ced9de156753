/**
 * Verification of OCI request signatures (draft-cavage HTTP signatures, `Signature version="1"`).
 *
 * The SDK signs `x-date (request-target) host`, and for POST/PUT/PATCH also
 * `content-type content-length x-content-sha256`; the body hash is checked as well.
 */
import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { TrustedKey } from "./types.js";

/** Headers every signed request must cover. */
const ALWAYS_SIGNED = ["(request-target)", "host"] as const;
/** Extra headers a request with a body must cover. */
const BODY_SIGNED = ["content-type", "content-length", "x-content-sha256"] as const;
const METHODS_WITH_BODY = new Set(["POST", "PUT", "PATCH"]);

/** The request as the verifier needs it. */
export interface SignedRequest {
  method: string;
  /** Path and query exactly as received (`req.url`). */
  target: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Result of a verification: the key that signed, or why the request is refused. */
export type SignatureCheck =
  | { ok: true; keyId: string }
  | { ok: false; keyId: string | undefined; reason: string };

/** Verifies requests against a fixed set of trusted public keys. */
export class SignatureVerifier {
  readonly #keys: ReadonlyMap<string, KeyObject>;
  readonly #maxSkewMs: () => number;

  constructor(trusted: TrustedKey[], maxSkewMs: () => number) {
    this.#keys = new Map(trusted.map((k) => [k.keyId, createPublicKey(k.publicKeyPem)]));
    this.#maxSkewMs = maxSkewMs;
  }

  /** Checks the Authorization header, the signed headers, the date and the body hash. */
  check(req: SignedRequest, now = Date.now()): SignatureCheck {
    const auth = headerValue(req.headers, "authorization");
    if (!auth) return { ok: false, keyId: undefined, reason: "missing Authorization header" };
    if (!auth.startsWith("Signature "))
      return { ok: false, keyId: undefined, reason: "not a Signature scheme" };
    const params = parseParams(auth.slice("Signature ".length));
    const keyId = params.get("keyId");
    const fail = (reason: string): SignatureCheck => ({ ok: false, keyId, reason });
    if (params.get("version") !== "1") return fail(`unsupported signature version ${params.get("version")}`);
    if (params.get("algorithm") !== "rsa-sha256")
      return fail(`unsupported algorithm ${params.get("algorithm")}`);
    if (!keyId) return fail("missing keyId");
    const key = this.#keys.get(keyId);
    if (!key) return fail(`unknown keyId ${keyId}`);
    const signed = (params.get("headers") ?? "date").toLowerCase().split(" ").filter(Boolean);
    const required: string[] = [...ALWAYS_SIGNED];
    if (METHODS_WITH_BODY.has(req.method)) required.push(...BODY_SIGNED);
    const missing = required.filter((h) => !signed.includes(h));
    if (!signed.includes("date") && !signed.includes("x-date")) missing.push("date|x-date");
    if (missing.length > 0) return fail(`headers not signed: ${missing.join(", ")}`);

    const lines: string[] = [];
    for (const name of signed) {
      if (name === "(request-target)") {
        lines.push(`(request-target): ${req.method.toLowerCase()} ${req.target}`);
        continue;
      }
      const value = headerValue(req.headers, name);
      if (value === undefined) return fail(`signed header ${name} is absent`);
      lines.push(`${name}: ${value}`);
    }
    const signature = Buffer.from(params.get("signature") ?? "", "base64");
    if (!verify("sha256", Buffer.from(lines.join("\n")), key, signature))
      return fail("signature does not verify");

    const dateText = headerValue(req.headers, signed.includes("x-date") ? "x-date" : "date") ?? "";
    const date = Date.parse(dateText);
    if (Number.isNaN(date)) return fail(`unreadable date ${dateText}`);
    if (Math.abs(now - date) > this.#maxSkewMs())
      return fail(`date ${dateText} is outside the allowed clock skew`);

    if (METHODS_WITH_BODY.has(req.method)) {
      const sha = createHash("sha256").update(req.body).digest("base64");
      if (headerValue(req.headers, "x-content-sha256") !== sha)
        return fail("x-content-sha256 does not match the body");
      if (headerValue(req.headers, "content-length") !== String(req.body.length)) {
        return fail("content-length does not match the body");
      }
    }
    return { ok: true, keyId };
  }
}

/** Parses `a="x",b="y"` into a map. */
function parseParams(text: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const m of text.matchAll(/([A-Za-z]+)="([^"]*)"/g)) params.set(m[1]!, m[2]!);
  return params;
}

/** One header's value; repeated headers are joined as HTTP says. */
function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}
