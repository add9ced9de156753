/**
 * What tests use of the real S3 server: the shared cluster (started on first use, once per run),
 * clients for its two accounts, one bucket per test file, and environments for real S3 tools.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { Agent } from "node:https";
import { join } from "node:path";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3Client,
  type _Object as S3Object,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { afterAll, beforeAll, expect, inject } from "vitest";
import { coerceError } from "../../src/util/errors.js";
import { retryUntil } from "../../src/util/retry.js";
import { type S3ClusterInfo, type S3Credentials, startS3Cluster } from "./s3-cluster.js";

export type { S3ClusterInfo, S3Credentials } from "./s3-cluster.js";

// the SDK's notice about its own future Node versions is noise in every test's output
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

let cached: Promise<S3ClusterInfo> | undefined;

/**
 * The run's S3 cluster. The first caller in the whole run starts it (under a lock directory);
 * every other caller, in any worker, waits for `cluster.json` to appear.
 */
export function s3Cluster(): Promise<S3ClusterInfo> {
  cached ??= ensureCluster().catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

async function ensureCluster(): Promise<S3ClusterInfo> {
  const home = inject("s3Home");
  if (!home)
    throw new Error("no s3Home: run the tests through vitest.config.ts (test/support/s3-global-setup.ts)");
  const infoFile = join(home, "cluster.json");
  const failedFile = join(home, "failed");
  const read = () => JSON.parse(readFileSync(infoFile, "utf8")) as S3ClusterInfo;
  if (existsSync(infoFile)) return read();
  let starter = false;
  try {
    mkdirSync(join(home, "starting"));
    starter = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw coerceError(err);
  }
  if (starter) {
    try {
      const info = await startS3Cluster(home, { warmUp });
      process.stderr.write(`s3: Ceph radosgw up in ${info.startedInMs} ms (${info.httpsEndpoint})\n`);
      return info;
    } catch (err) {
      writeFileSync(failedFile, coerceError(err).message);
      throw err;
    }
  }
  // a start failure is final: the waiters read it instead of waiting out the timeout
  const outcome = await retryUntil(
    async () => {
      if (existsSync(failedFile)) return { failed: readFileSync(failedFile, "utf8") };
      return existsSync(infoFile) ? { info: read() } : undefined;
    },
    {
      timeoutMs: 240_000,
      intervalMs: 100,
      maxIntervalMs: 500,
      what: "another worker to start the S3 cluster",
    },
  );
  if ("failed" in outcome) throw new Error(`the S3 cluster failed to start: ${outcome.failed}`);
  return outcome.info;
}

/** An SDK client for one of the cluster's accounts, over https with the test CA (or plain http). */
export function s3TestClient(
  info: S3ClusterInfo,
  who: "writer" | "reader" | S3Credentials,
  opts: { http?: boolean; endpoint?: string; maxAttempts?: number } = {},
): S3Client {
  const credentials = who === "writer" ? info.writer : who === "reader" ? info.reader : who;
  return new S3Client({
    endpoint: opts.endpoint ?? (opts.http ? info.httpEndpoint : info.httpsEndpoint),
    region: info.region,
    forcePathStyle: true,
    credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
    // radosgw 16 refuses the aws-chunked trailing checksums newer SDKs send by default
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: opts.maxAttempts ?? 3,
    requestHandler: new NodeHttpHandler({
      httpsAgent: new Agent({ ca: readFileSync(info.caFile), keepAlive: true, maxSockets: 32 }),
    }),
  });
}

/** Creates the first pools radosgw makes lazily (bucket index, data, multipart), so the first test is not slow. */
async function warmUp(info: S3ClusterInfo): Promise<void> {
  const s3 = s3TestClient(info, "writer", { http: true });
  try {
    const Bucket = "attest-warm-up";
    await s3.send(new CreateBucketCommand({ Bucket }));
    await s3.send(new PutObjectCommand({ Bucket, Key: "small", Body: "warm" }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: "multi" }));
    const part = await s3.send(
      new UploadPartCommand({ Bucket, Key: "multi", UploadId, PartNumber: 1, Body: "x" }),
    );
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key: "multi",
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    );
    await emptyBucket(s3, Bucket);
    await s3.send(new DeleteBucketCommand({ Bucket }));
  } finally {
    s3.destroy();
  }
}

/**
 * A new bucket owned by the writer, with a unique name starting with `label`, whose policy lets
 * the read-only account list it and read its objects and nothing more.
 */
export async function createTestBucket(label: string): Promise<string> {
  const info = await s3Cluster();
  const suffix = Math.random().toString(36).slice(2, 10);
  const Bucket = `${label
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .slice(0, 40)}-${suffix}`;
  const s3 = s3TestClient(info, "writer");
  try {
    await s3.send(new CreateBucketCommand({ Bucket }));
    await s3.send(
      new PutBucketPolicyCommand({ Bucket, Policy: JSON.stringify(readOnlyPolicy(info, Bucket)) }),
    );
  } finally {
    s3.destroy();
  }
  return Bucket;
}

/** The bucket policy the tests give the read-only account (list the bucket, get its objects). */
export function readOnlyPolicy(info: S3ClusterInfo, bucket: string): object {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { AWS: [info.reader.arn] },
        Action: ["s3:ListBucket"],
        Resource: [`arn:aws:s3:::${bucket}`],
      },
      {
        Effect: "Allow",
        Principal: { AWS: [info.reader.arn] },
        Action: ["s3:GetObject"],
        Resource: [`arn:aws:s3:::${bucket}/*`],
      },
    ],
  };
}

async function emptyBucket(s3: S3Client, Bucket: string): Promise<void> {
  for (;;) {
    const page = await s3.send(new ListObjectsV2Command({ Bucket, MaxKeys: 1000 }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length === 0) return;
    await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys, Quiet: true } }));
  }
}

/** Deletes every object of a test bucket and the bucket (the OSD keeps data in RAM: free it). */
export async function deleteTestBucket(bucket: string): Promise<void> {
  const info = await s3Cluster();
  const s3 = s3TestClient(info, "writer");
  try {
    await emptyBucket(s3, bucket);
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  } finally {
    s3.destroy();
  }
}

/**
 * Environment for real S3 tools (aws cli, barman-cloud via boto3) as `who`: keys, region, and the
 * test CA. The endpoint still has to be passed (`--endpoint-url`): use `info.httpsEndpoint`.
 */
export function awsToolEnv(info: S3ClusterInfo, who: "writer" | "reader"): Record<string, string> {
  const c = who === "writer" ? info.writer : info.reader;
  return {
    AWS_ACCESS_KEY_ID: c.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
    AWS_DEFAULT_REGION: info.region,
    AWS_CA_BUNDLE: info.caFile,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: "/dev/null",
    AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
  };
}

/** Uploads many objects as the writer, `concurrency` at a time (fast enough for thousands of small ones). */
export async function putObjects(
  bucket: string,
  objects: ReadonlyArray<{ key: string; body: string | Uint8Array }>,
  concurrency = 32,
): Promise<void> {
  const info = await s3Cluster();
  const s3 = s3TestClient(info, "writer");
  try {
    let next = 0;
    const worker = async () => {
      while (next < objects.length) {
        const o = objects[next++]!;
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: o.key, Body: o.body }));
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, objects.length) }, worker));
  } finally {
    s3.destroy();
  }
}

/** Every object of `bucket` under `prefix`, page after page, in the order the server lists them. */
async function* listAll(s3: S3Client, bucket: string, prefix?: string): AsyncGenerator<S3Object> {
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        ...(prefix ? { Prefix: prefix } : {}),
        ...(token ? { ContinuationToken: token } : {}),
      }),
    );
    yield* page.Contents ?? [];
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/** Runs `fn` with an SDK client of `who`, destroyed afterwards. */
async function withS3<T>(who: "writer" | "reader", fn: (s3: S3Client) => Promise<T>): Promise<T> {
  const s3 = s3TestClient(await s3Cluster(), who);
  try {
    return await fn(s3);
  } finally {
    s3.destroy();
  }
}

/**
 * Every object of a bucket as "key size etag lastModified", in key order, listed by the writer: two
 * equal snapshots mean nothing was written, overwritten, deleted or added in between.
 */
export function bucketSnapshot(bucket: string): Promise<string[]> {
  return withS3("writer", async (s3) => {
    const out: string[] = [];
    for await (const o of listAll(s3, bucket))
      out.push(`${o.Key} ${o.Size} ${o.ETag} ${o.LastModified?.toISOString()}`);
    return out;
  });
}

/** Every key of a bucket with its ETag and size, sorted, as the read-only account lists them. */
export function readerBucketState(bucket: string): Promise<string[]> {
  return withS3("reader", async (s3) => {
    const out: string[] = [];
    for await (const o of listAll(s3, bucket)) out.push(`${o.Key} ${o.ETag} ${o.Size}`);
    return out.sort();
  });
}

/** The keys under `prefix`, listed by the writer. */
export function keysUnder(bucket: string, prefix: string): Promise<string[]> {
  return withS3("writer", async (s3) => {
    const out: string[] = [];
    for await (const o of listAll(s3, bucket, prefix)) out.push(o.Key!);
    return out;
  });
}

/** The bytes of one object, read by the writer. */
export function readObject(bucket: string, key: string): Promise<Buffer> {
  return withS3("writer", async (s3) => {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await got.Body!.transformToByteArray());
  });
}

/** Deletes one object as the writer (a fault made on purpose). */
export async function deleteObject(bucket: string, key: string): Promise<void> {
  await withS3("writer", (s3) => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })));
}

/** Copies one object to another key of the same bucket, as the writer. */
export async function copyObject(bucket: string, from: string, to: string): Promise<void> {
  await withS3("writer", (s3) =>
    s3.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: `${bucket}/${from}` })),
  );
}

/** Copies every object under `from/` to `to/` as the writer, for a fault that must not touch the shared fixture. */
export function copyPrefix(bucket: string, from: string, to: string): Promise<void> {
  return withS3("writer", async (s3) => {
    for await (const o of listAll(s3, bucket, `${from}/`))
      await s3.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: `${to}/${o.Key!.slice(from.length + 1)}`,
          CopySource: `${bucket}/${o.Key}`,
        }),
      );
  });
}

/** Replaces object `key` by `change` of its bytes, stored under `newKey` (e.g. the object compressed). */
export async function rewriteObject(
  bucket: string,
  key: string,
  newKey: string,
  change: (body: Buffer) => Uint8Array,
): Promise<void> {
  const body = await readObject(bucket, key);
  await putObjects(bucket, [{ key: newKey, body: change(body) }]);
  await deleteObject(bucket, key);
}

/**
 * For the enclosing `describe`: a test bucket filled with `objects()` before its tests and handed to
 * `ready`; after them it must list exactly as it did then (nothing written, deleted or tagged), and
 * is deleted either way.
 */
export function useFilledBucket(
  label: string,
  objects: () => ReadonlyArray<{ key: string; body: string | Uint8Array }>,
  ready: (lab: { info: S3ClusterInfo; bucket: string }) => void,
): void {
  let bucket: string | undefined;
  let before: string[] | undefined;
  beforeAll(async () => {
    const info = await s3Cluster();
    bucket = await createTestBucket(label);
    await putObjects(bucket, objects());
    before = await bucketSnapshot(bucket);
    ready({ info, bucket });
  });
  afterAll(async () => {
    if (!bucket) return;
    try {
      if (before) expect(await bucketSnapshot(bucket)).toEqual(before);
    } finally {
      await deleteTestBucket(bucket);
    }
  });
}
