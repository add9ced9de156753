/**
 * The real S3 server the object-storage tests run against: it answers over https with the test
 * CA, the writer account writes, and the account Attest gets can list and read but never write,
 * delete or tag.
 */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestBucket,
  deleteTestBucket,
  putObjects,
  type S3ClusterInfo,
  s3Cluster,
  s3TestClient,
} from "./support/s3.js";

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3ServiceException) return err.name;
    throw err;
  }
  return "allowed";
}

describe("the test S3 server (Ceph radosgw on loopback)", () => {
  let info: S3ClusterInfo;
  let bucket: string;
  let writer: S3Client;
  let reader: S3Client;

  beforeAll(async () => {
    info = await s3Cluster();
    bucket = await createTestBucket("harness");
    writer = s3TestClient(info, "writer");
    reader = s3TestClient(info, "reader", { maxAttempts: 1 });
    await putObjects(bucket, [{ key: "dumps/a.sql", body: "select 1;\n" }]);
  });

  afterAll(async () => {
    reader?.destroy();
    writer?.destroy();
    if (bucket) await deleteTestBucket(bucket);
  });

  it("serves https with a certificate from the test CA, on 127.0.0.1", () => {
    expect(info.httpsEndpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(info.httpEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("lets the read-only account list and read", async () => {
    const list = await reader.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(list.Contents?.map((o) => o.Key)).toEqual(["dumps/a.sql"]);
    const got = await reader.send(
      new GetObjectCommand({ Bucket: bucket, Key: "dumps/a.sql", Range: "bytes=0-5" }),
    );
    expect(await got.Body?.transformToString()).toBe("select");
  });

  it("refuses every write of the read-only account", async () => {
    const Bucket = bucket;
    const Key = "dumps/a.sql";
    expect(await refusal(reader.send(new PutObjectCommand({ Bucket, Key: "dumps/b.sql", Body: "x" })))).toBe(
      "AccessDenied",
    );
    expect(await refusal(reader.send(new PutObjectCommand({ Bucket, Key, Body: "overwritten" })))).toBe(
      "AccessDenied",
    );
    expect(await refusal(reader.send(new DeleteObjectCommand({ Bucket, Key })))).toBe("AccessDenied");
    expect(
      await refusal(
        reader.send(
          new PutObjectTaggingCommand({ Bucket, Key, Tagging: { TagSet: [{ Key: "k", Value: "v" }] } }),
        ),
      ),
    ).toBe("AccessDenied");
    expect(await refusal(reader.send(new PutBucketPolicyCommand({ Bucket, Policy: "{}" })))).toBe(
      "AccessDenied",
    );
    expect(await refusal(reader.send(new CreateBucketCommand({ Bucket: `${bucket}-own` })))).not.toBe(
      "allowed",
    );
    const after = await writer.send(new ListObjectsV2Command({ Bucket }));
    expect(after.Contents?.map((o) => [o.Key, o.Size])).toEqual([["dumps/a.sql", 10]]);
  });

  it("refuses the read-only account a bucket whose policy does not name it", async () => {
    const other = `${bucket}-nopolicy`;
    await writer.send(new CreateBucketCommand({ Bucket: other }));
    try {
      expect(await refusal(reader.send(new ListObjectsV2Command({ Bucket: other })))).toBe("AccessDenied");
    } finally {
      await deleteTestBucket(other);
    }
  });
});
