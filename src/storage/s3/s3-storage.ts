/** A bucket of an S3-compatible service seen through the storage interface (read-only calls only). */
import { type Readable, Readable as ReadableStream } from "node:stream";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
} from "@aws-sdk/client-s3";
import { registerSecret } from "../../util/redact.js";
import { systemClock } from "../../util/retry.js";
import { type Storage, type StorageCallOptions, StorageError, type StoredObject } from "../storage.js";
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
}

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

  async *list(prefix: string, opts: StorageCallOptions = {}): AsyncIterable<StoredObject> {
    let token: string | undefined;
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
          { abortSignal: opts.signal },
        );
      } catch (err) {
        throw s3Error(err, `${this.name}: cannot list ${this.describe(prefix)}`);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield {
          key: o.Key,
          sizeBytes: o.Size ?? 0,
          lastModified: o.LastModified ?? new Date(0),
          ...(o.ETag ? { etag: unquote(o.ETag)! } : {}),
        };
      }
      // a service that says "truncated" without a token would loop forever: stop instead
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
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
    try {
      for await (const chunk of got.body) chunks.push(chunk as Buffer);
    } catch (err) {
      throw s3Error(err, `${this.name}: reading ${this.describe(key)} broke off`);
    }
    // a service that ignores Range sends the whole object: keep only what was asked for
    return Buffer.concat(chunks).subarray(0, length);
  }

  async openRead(key: string, opts: StorageCallOptions & { offset?: number } = {}): Promise<Readable> {
    const start = opts.offset ?? 0;
    const first = await this.#get(key, { offset: start }, opts);
    const expectedEnd = start + first.contentLength;
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
            failures = 0;
            yield chunk as Buffer;
          }
          if (pos >= expectedEnd) return;
          throw new StorageError(`${name}: ${where} ended at byte ${pos} of ${expectedEnd}`, "ShortRead");
        } catch (err) {
          if (opts.signal?.aborted) throw err;
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
