/** HTTP plumbing of the emulator: OCI error shape, bodies, request ids, etags and pagination. */
import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

/** An error answered in OCI's shape: status + `{ code, message }`. */
export class OciApiError extends Error {
  override readonly name = "OciApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** 404 as OCI says it: it never tells "missing" from "not allowed". */
export function notFound(what: string): OciApiError {
  return new OciApiError(
    404,
    "NotAuthorizedOrNotFound",
    `Authorization failed or requested resource not found: ${what}`,
  );
}

/** 400 for a bad or missing parameter. */
export function invalidParameter(message: string): OciApiError {
  return new OciApiError(400, "InvalidParameter", message);
}

/** 409 for an operation the resource's current state does not allow (retryable by the SDK). */
export function incorrectState(message: string): OciApiError {
  return new OciApiError(409, "IncorrectState", message);
}

/** Default `{code}` for a status when a fault does not name one. */
export function defaultErrorCode(status: number): string {
  const codes: Record<number, string> = {
    401: "NotAuthenticated",
    409: "IncorrectState",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
  };
  return codes[status] ?? "InternalServerError";
}

/** What a route handler answers. */
export interface ApiResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Reads the whole request body, bounded so a runaway client cannot exhaust memory. */
export async function readBody(req: IncomingMessage, maxBytes = 1 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > maxBytes) throw new OciApiError(413, "RequestEntityTooLarge", "request body too large");
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** Parses a JSON body; OCI answers 400 InvalidParameter to malformed JSON. */
export function parseJsonBody(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch {
    throw invalidParameter("request body is not valid JSON");
  }
}

/** A fresh `opc-request-id`, echoing the client's own id as OCI does. */
export function newRequestId(clientId: string | undefined): string {
  const own = randomBytes(16).toString("hex").toUpperCase();
  return clientId ? `${clientId}/${own}` : own;
}

/** A weak etag derived from the rendered resource, so it changes when the resource does. */
export function etagOf(body: unknown): string {
  return createHash("sha256").update(JSON.stringify(body)).digest("hex").slice(0, 32);
}

/** A new OCID of the given resource type. */
export function newOcid(resourceType: string, region: string): string {
  return `ocid1.${resourceType}.oc1.${region}.${randomBytes(20).toString("hex")}`;
}

/** Writes an answer; `opc-request-id` always, `etag` for single resources. */
export function writeResponse(res: ServerResponse, answer: ApiResponse, requestId: string): void {
  const headers: Record<string, string> = { "opc-request-id": requestId, ...answer.headers };
  if (answer.body === undefined) {
    res.writeHead(answer.status, headers).end();
    return;
  }
  const text = JSON.stringify(answer.body);
  headers["content-type"] = "application/json";
  headers["content-length"] = String(Buffer.byteLength(text));
  res.writeHead(answer.status, headers).end(text);
}

/** Slices `items` by the OCI `limit`/`page` query; the page token is opaque to clients. */
export function paginate<T>(items: T[], query: URLSearchParams): ApiResponse & { body: T[] } {
  const limitText = query.get("limit");
  const limit = limitText === null ? 100 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw invalidParameter(`invalid limit: ${limitText}`);
  const page = query.get("page");
  let offset = 0;
  if (page !== null) {
    const decoded = /^p([0-9]+)$/.exec(Buffer.from(page, "base64url").toString("utf8"));
    if (!decoded) throw invalidParameter(`invalid page token: ${page}`);
    offset = Number(decoded[1]);
  }
  const body = items.slice(offset, offset + limit);
  const next = offset + limit;
  const headers: Record<string, string> =
    next < items.length ? { "opc-next-page": Buffer.from(`p${next}`).toString("base64url") } : {};
  return { status: 200, body, headers };
}

/** Sorts list results the way OCI does: TIMECREATED descending, DISPLAYNAME ascending by default. */
export function sortResources<T extends { timeCreated: string; displayName: string }>(
  items: T[],
  query: URLSearchParams,
): T[] {
  const by = query.get("sortBy") ?? "TIMECREATED";
  if (by !== "TIMECREATED" && by !== "DISPLAYNAME") throw invalidParameter(`invalid sortBy: ${by}`);
  const order = query.get("sortOrder") ?? (by === "TIMECREATED" ? "DESC" : "ASC");
  if (order !== "ASC" && order !== "DESC") throw invalidParameter(`invalid sortOrder: ${order}`);
  const key = (item: T) => (by === "TIMECREATED" ? item.timeCreated : item.displayName);
  const sign = order === "ASC" ? 1 : -1;
  return [...items].sort((a, b) => (key(a) < key(b) ? -sign : key(a) > key(b) ? sign : 0));
}

/** Turns anything thrown into an Error. */
export function coerceError(err: unknown): Error {
  return err instanceof Error ? err : new Error(typeof err === "string" ? err : JSON.stringify(err));
}
