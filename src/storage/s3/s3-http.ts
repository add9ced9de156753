/** The HTTP side of the S3 client: agents with the configured CA and loopback names for *.localhost. */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { readFileSync } from "node:fs";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { rootCertificates } from "node:tls";
import { NodeHttpHandler } from "@smithy/node-http-handler";

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * `localhost` and every name under it are loopback (RFC 6761), as systemd-resolved and browsers
 * answer; the system resolver here does not, and virtual-hosted buckets of a local endpoint
 * (`bucket.localhost`) need it. Every other name goes to the system resolver.
 */
export function loopbackAwareLookup(
  hostname: string,
  options: LookupOptions,
  callback: LookupCallback,
): void {
  if (hostname === "localhost" || hostname.endsWith(".localhost")) {
    if (options.all) callback(null, [{ address: "127.0.0.1", family: 4 }]);
    else callback(null, "127.0.0.1", 4);
    return;
  }
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err || options.all) callback(err, addresses);
    else callback(null, addresses[0]?.address ?? "", addresses[0]?.family);
  });
}

/** What the request handler needs to know. */
export interface S3HttpOptions {
  /** PEM file of extra CAs, trusted beside the system's. */
  caFile?: string;
}

/** A request handler for the SDK: keep-alive agents, the extra CA, timeouts that end a stalled call. */
export function createS3RequestHandler(opts: S3HttpOptions): NodeHttpHandler {
  const ca = opts.caFile ? [...rootCertificates, readFileSync(opts.caFile, "utf8")] : undefined;
  const common = { keepAlive: true, maxSockets: 16, lookup: loopbackAwareLookup };
  return new NodeHttpHandler({
    httpAgent: new HttpAgent(common),
    httpsAgent: new HttpsAgent({ ...common, ...(ca ? { ca } : {}) }),
    connectionTimeout: 15_000,
    // idle time of a socket mid-request: a stalled read fails and is retried instead of hanging
    requestTimeout: 120_000,
  });
}
