/**
 * The S3 store of the storage layer against a real S3 server (Ceph radosgw on loopback), with the
 * read-only account: pagination past 1000 keys, ranged and streamed reads, wrong keys, TLS with
 * and without the CA, virtual-hosted buckets, 5xx / 429 / SlowDown and a body cut short retried,
 * and the bucket byte-identical afterwards.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStorage } from "../src/storage/create-storage.js";
import { type Storage, StorageError, type StoredObject } from "../src/storage/storage.js";
import { storageSchema } from "../src/storage/storage-config.js";
import { type S3ClusterInfo, useFilledBucket } from "./support/s3.js";
import { s3StoreFields } from "./support/s3-cli.js";
import { type FaultProxy, startFaultProxy } from "./support/s3-fault-proxy.js";

const MANY = 1234;
const BIG = randomBytes(3 * 1024 * 1024 + 17);

async function collect(it: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const o of it) out.push(o);
  return out;
}

async function failure(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof StorageError) return err;
    throw err;
  }
  throw new Error("expected a StorageError");
}

describe("S3 store (Ceph radosgw, read-only account)", () => {
  let info: S3ClusterInfo;
  let bucket: string;
  const opened: Storage[] = [];

  async function store(over: Record<string, unknown> = {}): Promise<Storage> {
    // the keys themselves: no CLI resolves ${ENV} references here
    const cfg = storageSchema.parse(
      s3StoreFields(info, bucket, {
        access_key_id: info.reader.accessKeyId,
        secret_access_key: info.reader.secretAccessKey,
        ...over,
      }),
    );
    const s = await createStorage("lab", cfg);
    opened.push(s);
    return s;
  }

  // the read-only account writes, deletes and tags nothing in all these tests: checked afterwards
  useFilledBucket(
    "s3-storage",
    () => [
      ...Array.from({ length: MANY }, (_, i) => ({
        key: `many/${String(i).padStart(5, "0")}.wal`,
        body: `w${i}`,
      })),
      { key: "big/blob.bin", body: BIG },
      { key: "big/empty", body: "" },
      { key: "other/x", body: "x" },
    ],
    (lab) => {
      ({ info, bucket } = lab);
    },
  );

  // registered after the bucket's own hook, so it runs before the bucket is checked and deleted
  afterAll(() => {
    for (const s of opened) s.close();
  });

  it("lists more than 1000 keys under a prefix, page by page, in key order", async () => {
    const s = await store();
    const all = await collect(s.list("many/"));
    expect(all).toHaveLength(MANY);
    expect(all[0]).toMatchObject({ key: "many/00000.wal", sizeBytes: 2 });
    expect(all.at(-1)?.key).toBe(`many/${String(MANY - 1).padStart(5, "0")}.wal`);
    expect(all.map((o) => o.key)).toEqual([...all.map((o) => o.key)].sort());
    expect(all.every((o) => /^[0-9a-f]{32}$/.test(o.etag ?? "") && o.lastModified.getTime() > 0)).toBe(true);
    expect((await collect(s.list("many/0122"))).map((o) => o.key)).toEqual(
      Array.from({ length: 10 }, (_, i) => `many/0122${i}.wal`),
    );
    expect(await collect(s.list("nothing-here/"))).toEqual([]);
  });

  it("stats an object (size, date, ETag) and says undefined for a missing one", async () => {
    const s = await store();
    const st = await s.stat("big/blob.bin");
    expect(st).toMatchObject({ key: "big/blob.bin", sizeBytes: BIG.length });
    const listed = (await collect(s.list("big/blob"))).at(0);
    expect(st?.etag).toBe(listed?.etag);
    expect(await s.stat("big/missing")).toBeUndefined();
  });

  it("reads a byte range without fetching the object", async () => {
    const s = await store();
    expect(await s.readRange("big/blob.bin", 1000, 64)).toEqual(BIG.subarray(1000, 1064));
    expect(await s.readRange("big/blob.bin", BIG.length - 5, 64)).toEqual(BIG.subarray(BIG.length - 5));
    expect(await s.readRange("big/blob.bin", BIG.length + 10, 64)).toHaveLength(0);
    expect(await s.readRange("big/empty", 0, 64)).toHaveLength(0);
    expect(isNotFoundCode((await failure(s.readRange("big/missing", 0, 10))).code)).toBe(true);
  });

  it("streams an object whole, or from an offset", async () => {
    const s = await store();
    expect((await buffer(await s.openRead("big/blob.bin"))).equals(BIG)).toBe(true);
    expect(
      (await buffer(await s.openRead("big/blob.bin", { offset: 777_777 }))).equals(BIG.subarray(777_777)),
    ).toBe(true);
  });

  it("names the S3 error code for wrong keys and for a bucket the account may not read", async () => {
    const badKey = await failure(
      collect((await store({ access_key_id: "NOSUCHKEY0000000000" })).list("many/")),
    );
    expect(badKey.code).toBe("InvalidAccessKeyId");
    expect(badKey.message).toContain("InvalidAccessKeyId");
    expect(badKey.message).toContain(`s3://${bucket}/many/`);
    const badSecret = await failure(
      collect((await store({ secret_access_key: "wrong-secret-0000" })).list("")),
    );
    expect(badSecret.code).toBe("SignatureDoesNotMatch");
    const writerBucketOnly = await failure(collect((await store({ bucket: `${bucket}-none` })).list("")));
    expect(["NoSuchBucket", "AccessDenied"]).toContain(writerBucketOnly.code);
  });

  it("verifies TLS with the configured CA, and refuses the server without it", async () => {
    const s = await store({ ca_file: undefined, max_attempts: 1 });
    const err = await failure(s.stat("big/blob.bin"));
    expect(err.code).toMatch(/CERT|ISSUER|LEAF/);
    expect((await (await store()).stat("big/blob.bin"))?.sizeBytes).toBe(BIG.length);
  });

  it("addresses the bucket virtual-hosted style (bucket.localhost) when path_style is off", async () => {
    const proxy = await startFaultProxy(info.httpEndpoint, () => undefined);
    try {
      const s = await store({
        endpoint: `http://localhost:${proxy.port}`,
        path_style: false,
        ca_file: undefined,
      });
      expect(await collect(s.list("other/"))).toHaveLength(1);
      expect(proxy.seen.map((r) => [r.host, r.url.split("?")[0]])).toEqual([
        [`${bucket}.localhost:${proxy.port}`, "/"],
      ]);
    } finally {
      await proxy.close();
    }
  });

  describe("through a proxy that injects faults", () => {
    let proxy: FaultProxy;
    const faults = new Map<
      string,
      Array<"slow-down" | "internal-error" | "too-many-requests" | "cut-body">
    >();

    beforeAll(async () => {
      // each kind of request meets its faults on its first attempts, then goes through
      proxy = await startFaultProxy(info.httpEndpoint, (req) => {
        const kind = `${req.method} ${req.headers.range ? "range" : ""} ${req.url?.includes("list-type") ? "list" : ""}`;
        return faults.get(kind)?.shift();
      });
      faults.set("GET  list", ["slow-down", "internal-error"]);
      faults.set("HEAD  ", ["slow-down"]);
      faults.set("GET range ", ["too-many-requests"]);
      faults.set("GET  ", ["slow-down", "cut-body"]);
    });

    afterAll(async () => {
      await proxy?.close();
    });

    it("retries 503 SlowDown, 500 and 429 with backoff, and resumes a body cut short", async () => {
      const s = await store({ endpoint: proxy.url, ca_file: undefined, max_attempts: 4 });
      expect(await collect(s.list("many/"))).toHaveLength(MANY);
      expect((await s.stat("big/blob.bin"))?.sizeBytes).toBe(BIG.length);
      expect(await s.readRange("big/blob.bin", 5, 10)).toEqual(BIG.subarray(5, 15));
      expect((await buffer(await s.openRead("big/blob.bin"))).equals(BIG)).toBe(true);
      const injected = proxy.seen.filter((r) => r.fault);
      expect(injected.map((r) => r.fault).sort()).toEqual(
        ["cut-body", "internal-error", "slow-down", "slow-down", "slow-down", "too-many-requests"].sort(),
      );
      expect([...faults.values()].flat()).toEqual([]);
      // a cut body is resumed from where it broke, not fetched again from the start
      const gets = proxy.seen.filter(
        (r) => r.method === "GET" && r.url.startsWith(`/${bucket}/big/blob.bin`),
      );
      expect(gets.length).toBeGreaterThanOrEqual(4);
      // nothing but reads went out
      expect(new Set(proxy.seen.map((r) => r.method))).toEqual(new Set(["GET", "HEAD"]));
    });

    it("gives up after max_attempts with the last S3 error code", async () => {
      faults.set("HEAD  ", ["slow-down", "slow-down", "slow-down"]);
      const s = await store({ endpoint: proxy.url, ca_file: undefined, max_attempts: 2 });
      const err = await failure(s.stat("big/blob.bin"));
      expect(err.status).toBe(503);
      expect(faults.get("HEAD  ")).toHaveLength(1);
      faults.set("HEAD  ", []);
    });
  });
});

function isNotFoundCode(code: string): boolean {
  return code === "NoSuchKey" || code === "NotFound";
}

describe("local store", () => {
  it("lists, stats and reads files under a directory, and no key leaves it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "attest-local-store-"));
    try {
      for (const [k, v] of [
        ["a/1.sql", "one"],
        ["a/b/2.sql", "two"],
        ["c.sql", "three"],
      ] as const) {
        const p = join(dir, k);
        mkdirSync(join(p, ".."), { recursive: true });
        writeFileSync(p, v);
      }
      const s = await createStorage("here", storageSchema.parse({ type: "local", path: dir }));
      expect((await collect(s.list(""))).map((o) => o.key)).toEqual(["a/1.sql", "a/b/2.sql", "c.sql"]);
      expect((await collect(s.list("a/b"))).map((o) => o.key)).toEqual(["a/b/2.sql"]);
      expect((await s.stat("c.sql"))?.sizeBytes).toBe(5);
      expect(await s.stat("nope")).toBeUndefined();
      expect((await s.readRange("c.sql", 1, 3)).toString()).toBe("hre");
      expect((await buffer(await s.openRead("a/b/2.sql", { offset: 1 }))).toString()).toBe("wo");
      expect((await failure(s.readRange("../etc/passwd", 0, 4))).code).toBe("InvalidKey");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
