/**
 * What tests use of the real S3 server: the shared cluster (started on first use, once per run),
 * clients for its two accounts, one bucket per test file, and environments for real S3 tools.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { Agent } from "node:https";
import { join } from "node:path";
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { inject } from "vitest";
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

/**
 * Every object of a bucket as "key size etag lastModified", in key order, listed by the writer: two
 * equal snapshots mean nothing was written, overwritten, deleted or added in between.
 */
export async function bucketSnapshot(bucket: string): Promise<string[]> {
  const info = await s3Cluster();
  const s3 = s3TestClient(info, "writer");
  const out: string[] = [];
  try {
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const o of page.Contents ?? []) {
        out.push(`${o.Key} ${o.Size} ${o.ETag} ${o.LastModified?.toISOString()}`);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } finally {
    s3.destroy();
  }
  return out;
}
