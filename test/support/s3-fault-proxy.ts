/**
 * A small HTTP proxy on 127.0.0.1 in front of radosgw's plain-http endpoint that answers chosen
 * requests with a fault (503 SlowDown, 500, 429) or cuts a response body short, and records every
 * request it saw: what S3 clients do when the service misbehaves, tested against the real service.
 */
import { createServer, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** What the proxy does with one request. */
export type Fault = "slow-down" | "internal-error" | "too-many-requests" | "cut-body";

/** One request as the proxy saw it. */
export interface SeenRequest {
  method: string;
  url: string;
  host: string;
  fault?: Fault;
  status?: number;
}

/** A running proxy. */
export interface FaultProxy {
  /** http://127.0.0.1:PORT (use `localhost` in its place for virtual-hosted buckets). */
  url: string;
  port: number;
  seen: SeenRequest[];
  close(): Promise<void>;
}

const ERROR_BODIES: Record<Exclude<Fault, "cut-body">, { status: number; code: string }> = {
  "slow-down": { status: 503, code: "SlowDown" },
  "internal-error": { status: 500, code: "InternalError" },
  "too-many-requests": { status: 429, code: "TooManyRequests" },
};

/**
 * Starts the proxy; `decide` is asked for each request (with its 0-based number) whether to
 * inject a fault.
 */
export async function startFaultProxy(
  target: string,
  decide: (req: IncomingMessage, n: number) => Fault | undefined,
): Promise<FaultProxy> {
  const upstream = new URL(target);
  const seen: SeenRequest[] = [];
  let n = 0;
  const server: Server = createServer((req, res) => {
    const fault = decide(req, n++);
    const record: SeenRequest = {
      method: req.method ?? "",
      url: req.url ?? "",
      host: req.headers.host ?? "",
      ...(fault ? { fault } : {}),
    };
    seen.push(record);
    if (fault && fault !== "cut-body") {
      const { status, code } = ERROR_BODIES[fault];
      req.resume();
      record.status = status;
      res.writeHead(status, { "content-type": "application/xml" });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`,
      );
      return;
    }
    // the Host header is forwarded as the client sent it: it is part of the SigV4 signature
    const up = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (upRes) => {
        record.status = upRes.statusCode;
        if (fault !== "cut-body") {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        upRes.on("data", (c: Buffer) => chunks.push(c));
        upRes.on("end", () => {
          const body = Buffer.concat(chunks);
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          // half the promised bytes, then the connection drops
          res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
        });
      },
    );
    up.on("error", (err) => {
      record.status = 502;
      res.writeHead(502);
      res.end(String(err));
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
