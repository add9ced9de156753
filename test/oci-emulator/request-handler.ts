/** One request through the emulator: log it, verify its signature, inject faults, run the operation. */
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  type ApiResponse,
  coerceError,
  defaultErrorCode,
  newRequestId,
  notFound,
  OciApiError,
  parseJsonBody,
  readBody,
  writeResponse,
} from "./http-io.js";
import { matchRoute, type Route } from "./routing.js";
import type { SignatureVerifier } from "./signature.js";
import type { FaultRule, RequestLogEntry } from "./types.js";

/** The API version prefix the SDK appends to `client.endpoint`. */
export const API_PREFIX = "/20160918";

/** What the handler works with; `faults`, `requests` and `problems` are shared, live arrays. */
export interface RequestHandlerParts {
  routes: readonly Route[];
  verifier: SignatureVerifier;
  faults: FaultRule[];
  requests: RequestLogEntry[];
  problems: string[];
}

/** A node:http request listener that never throws: every failure becomes an OCI error answer. */
export function createRequestHandler(parts: RequestHandlerParts) {
  const { routes, verifier, faults, requests, problems } = parts;

  function takeFault(method: string, path: string, fullPath: string): FaultRule | undefined {
    const fault = faults.find(
      ({ times, match }) =>
        times > 0 &&
        (match.method === undefined || match.method.toUpperCase() === method) &&
        (match.pathPrefix === undefined ||
          path.startsWith(match.pathPrefix) ||
          fullPath.startsWith(match.pathPrefix)),
    );
    if (fault) fault.times -= 1;
    return fault;
  }

  return async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? "GET").toUpperCase();
    const url = new URL(req.url ?? "/", "http://emulator.invalid");
    const versioned = url.pathname.startsWith(API_PREFIX);
    const path = versioned ? url.pathname.slice(API_PREFIX.length) : url.pathname;
    const matched = versioned ? matchRoute(routes, method, path) : undefined;
    const entry: RequestLogEntry = {
      at: new Date().toISOString(),
      method,
      path,
      query: Object.fromEntries(url.searchParams),
      operation: matched?.route.operation,
      signatureVerified: false,
      keyId: undefined,
      authError: undefined,
      status: 0,
      faultInjected: false,
      body: undefined,
    };
    let answer: ApiResponse;
    try {
      const raw = await readBody(req);
      entry.body = bodyForLog(raw);
      const check = verifier.check({ method, target: req.url ?? "/", headers: req.headers, body: raw });
      entry.signatureVerified = check.ok;
      entry.keyId = check.keyId;
      if (!check.ok) {
        entry.authError = check.reason;
        const message =
          "The required information to complete authentication was not provided or was incorrect.";
        throw new OciApiError(401, "NotAuthenticated", message);
      }
      const fault = takeFault(method, path, url.pathname);
      if (fault) {
        entry.faultInjected = true;
        const code = fault.code ?? defaultErrorCode(fault.status);
        throw new OciApiError(fault.status, code, fault.message ?? `injected fault: ${code}`);
      }
      if (!matched) throw notFound(`${method} ${url.pathname}`);
      const body = parseJsonBody(raw);
      answer = await matched.route.handle({
        params: matched.params,
        query: url.searchParams,
        body,
        headers: req.headers,
      });
    } catch (err) {
      if (err instanceof OciApiError) {
        answer = { status: err.status, body: { code: err.code, message: err.message } };
      } else {
        const message = coerceError(err).message;
        problems.push(`${method} ${path}: ${message}`);
        answer = { status: 500, body: { code: "InternalServerError", message } };
      }
    }
    entry.status = answer.status;
    requests.push(entry);
    const clientRequestId = req.headers["opc-request-id"];
    writeResponse(
      res,
      answer,
      newRequestId(typeof clientRequestId === "string" ? clientRequestId : undefined),
    );
  };
}

/** The body as JSON for the request log, or its text when it is not JSON. */
function bodyForLog(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch {
    return raw.toString("utf8");
  }
}
