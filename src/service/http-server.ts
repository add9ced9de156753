/** The service's HTTP endpoint (node:http): /healthz, /metrics, /runs. Read-only. */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { ListenAddress } from "../scheduler/schedule-config.js";
import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { redact } from "../util/redact.js";

/** What the endpoint serves; each handler reads the service's current state. */
export interface Endpoints {
  health(): { ok: boolean; body: unknown };
  metrics(): Promise<{ contentType: string; body: string }>;
  runs(limit: number): unknown;
}

/** A listening endpoint. */
export interface HttpEndpoint {
  /** `http://host:port` actually bound (port 0 resolves here). */
  readonly url: string;
  close(): Promise<void>;
}

const RUNS_DEFAULT = 20;
const RUNS_MAX = 500;

/** Starts listening; rejects with a one-line reason when the address cannot be bound. */
export async function startHttpEndpoint(
  listen: ListenAddress,
  endpoints: Endpoints,
  logger: Logger,
): Promise<HttpEndpoint> {
  const server = createServer((req, res) => {
    void handle(req, res, endpoints).catch((err: unknown) => {
      logger.error("http handler failed", { path: req.url, error: describeError(err) });
      if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", "internal error\n");
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `cannot listen on ${listen.host}:${listen.port}: ${err.code === "EADDRINUSE" ? "address in use" : describeError(err)}`,
          { cause: err },
        ),
      ),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : listen.port;
  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, endpoints: Endpoints): Promise<void> {
  const url = new URL(req.url ?? "/", "http://localhost");
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("Allow", "GET, HEAD");
    return send(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
  }
  switch (url.pathname) {
    case "/healthz": {
      const h = endpoints.health();
      return sendJson(res, h.ok ? 200 : 503, h.body);
    }
    case "/metrics": {
      const m = await endpoints.metrics();
      return send(res, 200, m.contentType, m.body);
    }
    case "/runs": {
      const raw = url.searchParams.get("limit");
      const n = raw === null ? RUNS_DEFAULT : Number(raw);
      if (!Number.isInteger(n) || n < 1)
        return sendJson(res, 400, { error: "limit must be a positive integer" });
      return sendJson(res, 200, endpoints.runs(Math.min(n, RUNS_MAX)));
    }
    default:
      return sendJson(res, 404, { error: "not found", endpoints: ["/healthz", "/metrics", "/runs?limit=N"] });
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, "application/json; charset=utf-8", `${redact(JSON.stringify(body, null, 2))}\n`);
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { "Content-Type": contentType, "Cache-Control": "no-store" });
  res.end(res.req.method === "HEAD" ? undefined : body);
}
