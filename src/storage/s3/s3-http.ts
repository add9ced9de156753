/** The HTTP side of the S3 client: agents with the configured CA and loopback names for *.localhost. */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { readFileSync } from "node:fs";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { Transform } from "node:stream";
import { rootCertificates } from "node:tls";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { StorageError } from "../storage.js";

/**
 * Most bytes Attest reads of one answer it parses whole (a listing page, an error document):
 * a page of 1000 keys is ~300 KB, so 16 MiB is far past any honest answer, and a store that
 * streams an endless listing fails here instead of filling Attest's memory.
 */
export const MAX_PARSED_RESPONSE_BYTES = 16 * 1024 * 1024;

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
  /** Cap on the bytes of a parsed answer (default MAX_PARSED_RESPONSE_BYTES). */
  maxParsedBytes?: number;
}

type HandleArgs = Parameters<NodeHttpHandler["handle"]>;
type HandleResult = Awaited<ReturnType<NodeHttpHandler["handle"]>>;

/**
 * The SDK's handler, except that an answer the SDK collects whole before parsing (a listing, any
 * error) passes through a byte counter that breaks the connection past the cap. Object bodies
 * (a successful GET) are streamed by Attest itself, which bounds them by the object's size.
 */
class BoundedHttpHandler extends NodeHttpHandler {
  readonly #cap: number;

  constructor(options: ConstructorParameters<typeof NodeHttpHandler>[0], cap: number) {
    super(options);
    this.#cap = cap;
  }

  override async handle(request: HandleArgs[0], options?: HandleArgs[1]): Promise<HandleResult> {
    const out = await super.handle(request, options);
    const res = out.response;
    const parsedWhole = request.query?.["list-type"] !== undefined || res.statusCode >= 300;
    const body = res.body as NodeJS.ReadableStream & { destroy?: (e?: Error) => void };
    if (!parsedWhole || !body || typeof body.pipe !== "function") return out;
    const cap = this.#cap;
    let seen = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _enc, done) {
        seen += chunk.length;
        if (seen > cap) {
          body.destroy?.();
          done(
            new StorageError(
              `the store's answer is longer than ${cap} bytes (a listing page or error is far smaller): refused`,
              "ResponseTooLarge",
              res.statusCode,
            ),
          );
          return;
        }
        done(null, chunk);
      },
    });
    body.on("error", (err: Error) => counted.destroy(err));
    // the SDK's abort ends a request until its headers arrive; a body that stalls after them
    // (a listing's deadline) must end too
    const signal = options?.abortSignal as AbortSignal | undefined;
    const onAbort = () => {
      const err = new Error("the request was aborted");
      err.name = "AbortError";
      body.destroy?.(err);
      counted.destroy(err);
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener?.("abort", onAbort, { once: true });
    counted.on("close", () => signal?.removeEventListener?.("abort", onAbort));
    body.pipe(counted);
    res.body = counted;
    return out;
  }
}

/** A request handler for the SDK: keep-alive agents, the extra CA, timeouts that end a stalled call. */
export function createS3RequestHandler(opts: S3HttpOptions): NodeHttpHandler {
  const ca = opts.caFile ? [...rootCertificates, readFileSync(opts.caFile, "utf8")] : undefined;
  const common = { keepAlive: true, maxSockets: 16, lookup: loopbackAwareLookup };
  return new BoundedHttpHandler(
    {
      httpAgent: new HttpAgent(common),
      httpsAgent: new HttpsAgent({ ...common, ...(ca ? { ca } : {}) }),
      connectionTimeout: 15_000,
      // idle time of a socket mid-request: a stalled read fails and is retried instead of hanging
      requestTimeout: 120_000,
    },
    opts.maxParsedBytes ?? MAX_PARSED_RESPONSE_BYTES,
  );
}
