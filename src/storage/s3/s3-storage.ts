/** A bucket of an S3-compatible service seen through the storage interface (read-only calls only). */
import { type Readable, Readable as ReadableStream } from "node:stream";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
} from "@aws-sdk/client-s3";
import { formatDuration } from "../../util/duration.js";
import { registerSecret } from "../../util/redact.js";
import { systemClock } from "../../util/retry.js";
import {
  type ListOptions,
  type Storage,
  type StorageCallOptions,
  StorageError,
  type StoredObject,
} from "../storage.js";
import type { S3StorageConfig } from "./s3-config.js";
import { s3Error } from "./s3-errors.js";
import { createS3RequestHandler } from "./s3-http.js";

// the SDK warns on every start under Node 20 about its own future releases; Attest pins a version
// that supports Node 20, so the warning says nothing to its users
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

/** A body the SDK hands back (Node: an IncomingMessage). */
type Body = Readable & { transformToByteArray?: () => Promise<Uint8Array> };

/** What a GET answered. */
interface GetResult {
  body: Body;
  etag?: string;
  contentLength: number;
  /** Whether the answer carried a Content-Length at all. */
  knownLength: boolean;
}

/** C0 control characters and DEL: never part of a key Attest turns into a backup id. */
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** Pages in a row that bring no key past the last one before a listing counts as repeating. */
const MAX_IDLE_PAGES = 3;

const unquote = (etag: string | undefined) => etag?.replace(/^"|"$/g, "");

/** Reads one bucket. Attest never writes, deletes or tags: only List, Head and Get are sent. */
export class S3Storage implements Storage {
  readonly type = "s3";
  readonly name: string;
  readonly #cfg: S3StorageConfig;
  readonly #client: S3Client;

  constructor(name: string, cfg: S3StorageConfig) {
    this.name = name;
    this.#cfg = cfg;
    // keys written in the file itself are as secret as ones from ${ENV}
    if (cfg.secret_access_key) registerSecret(cfg.secret_access_key);
    if (cfg.session_token) registerSecret(cfg.session_token);
    this.#client = new S3Client({
      region: cfg.region,
      ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
      forcePathStyle: cfg.path_style,
      ...(cfg.access_key_id && cfg.secret_access_key
        ? {
            credentials: {
              accessKeyId: cfg.access_key_id,
              secretAccessKey: cfg.secret_access_key,
              ...(cfg.session_token ? { sessionToken: cfg.session_token } : {}),
            },
          }
        : {}),
      ...(cfg.profile ? { profile: cfg.profile } : {}),
      // radosgw 16 (and other S3-compatible services) refuse the aws-chunked trailing checksums
      // newer SDKs add by default; ranged GETs cannot be checked against a whole-object checksum
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // the SDK's standard strategy: exponential backoff with jitter on 5xx, 429, SlowDown,
      // throttling codes and dropped connections
      retryMode: "standard",
      maxAttempts: cfg.max_attempts,
      requestHandler: createS3RequestHandler({ caFile: cfg.ca_file }),
    });
  }

  describe(key: string): string {
    return `s3://${this.#cfg.bucket}/${key}`;
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<StoredObject> {
    const where = this.describe(prefix);
    const cap = this.#cfg.max_keys_listed;
    // one deadline for every page of the listing: a store that trickles pages, or answers
    // forever, ends here and the audit goes on with the listing as a failure
    const deadline = AbortSignal.timeout(this.#cfg.list_timeout);
    const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
    const seenTokens = new Set<string>();
    let token: string | undefined;
    let lastKey: Buffer | undefined;
    let listed = 0;
    let idlePages = 0;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#cfg.bucket,
            Prefix: prefix,
            MaxKeys: 1000,
            ...(token ? { ContinuationToken: token } : {}),
          }),
          { abortSignal: signal },
        );
      } catch (err) {
        if (deadline.aborted && !opts.signal?.aborted)
          throw new StorageError(
            `${this.name}: listing ${where} took longer than list_timeout (${formatDuration(this.#cfg.list_timeout)}): abandoned`,
            "ListTimeout",
            undefined,
            { cause: err },
          );
        throw s3Error(err, `${this.name}: cannot list ${where}`);
      }
      let advanced = false;
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        // S3 lists in key order (UTF-8 bytes): a page with no key past the greatest so far is
        // the store repeating itself (its keys are still listed, a store out of order loses none)
        const bytes = Buffer.from(o.Key, "utf8");
        if (lastKey === undefined || Buffer.compare(bytes, lastKey) > 0) {
          lastKey = bytes;
          advanced = true;
        }
        // a key with a newline or another control character would become a backup id that
        // breaks log lines, mail subjects and CSV readers: such objects are not listed, but the
        // caller is told (its source says so in a finding)
        if (CONTROL_CHARS.test(o.Key)) {
          opts.onUnlisted?.(o.Key, "a control character in the key");
          continue;
        }
        listed += 1;
        if (listed > cap)
          throw new StorageError(
            `${this.name}: ${where} lists more than ${cap} keys (max_keys_listed): refused`,
            "TooManyKeys",
          );
        yield {
          key: o.Key,
          sizeBytes: o.Size ?? 0,
          lastModified: o.LastModified ?? new Date(0),
          ...(o.ETag ? { etag: unquote(o.ETag)! } : {}),
        };
      }
      // a service that says "truncated" without a token would loop forever: stop instead
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      idlePages = advanced ? 0 : idlePages + 1;
      if (token !== undefined && (seenTokens.has(token) || idlePages > MAX_IDLE_PAGES))
        throw new StorageError(
          `${this.name}: the store repeats its listing of ${where} (a continuation token or page it already sent): refused`,
          "RepeatedListing",
        );
      if (token !== undefined) seenTokens.add(token);
    } while (token);
  }

  async stat(key: string, opts: StorageCallOptions = {}): Promise<StoredObject | undefined> {
    try {
      const h = await this.#client.send(new HeadObjectCommand({ Bucket: this.#cfg.bucket, Key: key }), {
        abortSignal: opts.signal,
      });
      return {
        key,
        sizeBytes: h.ContentLength ?? 0,
        lastModified: h.LastModified ?? new Date(0),
        ...(h.ETag ? { etag: unquote(h.ETag)! } : {}),
      };
    } catch (err) {
      const e = s3Error(err, `${this.name}: cannot stat ${this.describe(key)}`);
      if (e.code === "NotFound" || e.code === "NoSuchKey") return undefined;
      throw e;
    }
  }

  async #get(
    key: string,
    range: { offset: number; length?: number },
    opts: StorageCallOptions & { ifMatch?: string },
  ): Promise<GetResult> {
    const end = range.length !== undefined ? range.offset + range.length - 1 : "";
    const wantsRange = range.offset > 0 || range.length !== undefined;
    try {
      const r = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.#cfg.bucket,
          Key: key,
          ...(wantsRange ? { Range: `bytes=${range.offset}-${end}` } : {}),
          // a resumed read must continue the same content, not a newer object under the key
          ...(opts.ifMatch ? { IfMatch: `"${opts.ifMatch}"` } : {}),
        }),
        { abortSignal: opts.signal },
      );
      return {
        body: r.Body as Body,
        ...(r.ETag ? { etag: unquote(r.ETag)! } : {}),
        contentLength: r.ContentLength ?? 0,
        knownLength: r.ContentLength !== undefined,
      };
    } catch (err) {
      throw s3Error(err, `${this.name}: cannot read ${this.describe(key)}`);
    }
  }

  async readRange(
    key: string,
    offset: number,
    length: number,
    opts: StorageCallOptions = {},
  ): Promise<Buffer> {
    if (length <= 0) return Buffer.alloc(0);
    let got: GetResult;
    try {
      got = await this.#get(key, { offset, length }, opts);
    } catch (err) {
      // a range that starts at or past the end (an empty object too) is answered 416
      if (err instanceof StorageError && err.code === "InvalidRange") return Buffer.alloc(0);
      throw err;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    try {
      for await (const chunk of got.body) {
        chunks.push(chunk as Buffer);
        received += (chunk as Buffer).length;
        // a service that ignores Range sends the whole object (or an endless body): stop reading
        // once the range is complete; leaving the loop destroys the body and its connection
        if (received >= length) break;
      }
    } catch (err) {
      throw s3Error(err, `${this.name}: reading ${this.describe(key)} broke off`);
    } finally {
      got.body.destroy();
    }
    return Buffer.concat(chunks).subarray(0, length);
  }

  async openRead(key: string, opts: StorageCallOptions & { offset?: number } = {}): Promise<Readable> {
    const start = opts.offset ?? 0;
    const first = await this.#get(key, { offset: start }, opts);
    const expectedEnd = start + first.contentLength;
    const knownLength = first.knownLength;
    const attempts = this.#cfg.max_attempts;
    const name = this.name;
    const where = this.describe(key);
    const get = this.#get.bind(this);
    // the SDK retries a request until its headers arrive; a connection that breaks mid-body is
    // resumed here with a ranged GET from the last byte delivered, pinned to the same ETag
    async function* resuming(): AsyncGenerator<Buffer> {
      let pos = start;
      let body = first.body;
      let failures = 0;
      for (;;) {
        try {
          for await (const chunk of body) {
            pos += (chunk as Buffer).length;
            // the answer said how long it is: a body past that is not the object (an endless
            // stream would fill the sandbox's disk); stop rather than resume
            if (knownLength && pos > expectedEnd) {
              body.destroy();
              throw new StorageError(
                `${name}: the store sent more than the ${expectedEnd} bytes ${where} has`,
                "LongRead",
              );
            }
            failures = 0;
            yield chunk as Buffer;
          }
          if (pos >= expectedEnd) return;
          throw new StorageError(`${name}: ${where} ended at byte ${pos} of ${expectedEnd}`, "ShortRead");
        } catch (err) {
          if (opts.signal?.aborted || (err instanceof StorageError && err.code === "LongRead")) throw err;
          failures += 1;
          if (failures >= attempts) throw s3Error(err, `${name}: reading ${where} broke off at byte ${pos}`);
          await systemClock.sleep(Math.min(100 * 2 ** failures, 5_000), opts.signal);
          body = (
            await get(key, { offset: pos }, { ...opts, ...(first.etag ? { ifMatch: first.etag } : {}) })
          ).body;
        }
      }
    }
    return ReadableStream.from(resuming(), { objectMode: false });
  }

  close(): void {
    this.#client.destroy();
  }
}
