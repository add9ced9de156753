/**
 * pgBackRest repositories in a real S3 store (Ceph RGW on loopback), and the store relay that
 * gives a confined tool network to the store and nothing else.
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DeleteObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import { runConfined } from "../src/runtimes/local/confine.js";
import { forwardArgs, startStoreRelay } from "../src/runtimes/local/store-relay.js";
import { isRoot, lookupUser } from "../src/util/os-user.js";
import { attest, localSandboxes, workspace } from "./support/cli.js";
import {
  createTestBucket,
  deleteTestBucket,
  type S3ClusterInfo,
  s3Cluster,
  s3TestClient,
} from "./support/s3.js";

/** An http server on 127.0.0.1 that answers every request with `body`. */
async function httpServer(body: string): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.end(body));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** Python that fetches a URL and prints the body, or the error's class name (exit 3). */
const FETCH = [
  "import sys, urllib.request",
  "try: print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())",
  "except Exception as e: print(type(e).__name__, e); sys.exit(3)",
].join("\n");

describe("store relay", () => {
  const servers: Server[] = [];
  const dirs: string[] = [];
  let store: { port: number };
  let production: { port: number };
  const sandboxUser = isRoot() ? lookupUser("attest-sandbox") : undefined;

  beforeAll(async () => {
    const s = await httpServer("the store");
    const p = await httpServer("production data");
    servers.push(s.server, p.server);
    store = s;
    production = p;
  });
  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const relayDir = () => {
    const d = mkdtempSync(join(tmpdir(), "attest-relay-test-"));
    chmodSync(d, 0o711);
    dirs.push(d);
    return d;
  };

  it("reaches the store's endpoint from inside the confinement, and nothing else on loopback", async () => {
    const dir = relayDir();
    await using relay = await startStoreRelay({
      endpoint: { host: "127.0.0.1", port: store.port },
      dir,
      owner: sandboxUser,
    });
    const run = (url: string) =>
      runConfined("sh", forwardArgs(relay, "python3", ["-c", FETCH, url]), {
        readOnly: [dir],
        user: sandboxUser,
        timeoutMs: 30_000,
        allowFailure: true,
      });
    const ok = await run(`http://127.0.0.1:${store.port}/`);
    expect(ok.stderrTail).toBe("");
    expect(ok.stdout.trim()).toBe("the store");
    expect(relay.connections()).toBe(1);
    // the production server listens on the host's loopback: the sandbox has its own
    const refused = await run(`http://127.0.0.1:${production.port}/`);
    expect(refused.code).toBe(3);
    expect(refused.stdout).toMatch(/Connection refused/);
    expect(relay.connections()).toBe(1);
  });

  it("without the forwarder the store is out of reach too", async () => {
    const r = await runConfined("python3", ["-c", FETCH, `http://127.0.0.1:${store.port}/`], {
      readOnly: [],
      user: sandboxUser,
      timeoutMs: 30_000,
      allowFailure: true,
    });
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/Connection refused/);
  });

  it("a forwarder for the store's port does not open another port", async () => {
    const dir = relayDir();
    await using relay = await startStoreRelay({
      endpoint: { host: "127.0.0.1", port: store.port },
      dir,
      owner: sandboxUser,
    });
    // the forwarder listens on the store's port only; the relay's socket is the only way out
    const r = await runConfined(
      "sh",
      forwardArgs(relay, "python3", ["-c", FETCH, `http://127.0.0.2:${production.port}/`]),
      { readOnly: [dir], user: sandboxUser, timeoutMs: 30_000, allowFailure: true },
    );
    expect(r.code).toBe(3);
    expect(relay.connections()).toBe(0);
  });
});

/** What fixtures/build-s3-backups.sh recorded. */
interface Expected {
  backup_id: string;
  prefix: string;
  stop_wal: string;
  last_wal: string;
  wal_after_backup: string[];
  system_identifier: string;
  markers: Array<{ id: number; label: string; committedAt: string }>;
}

/** Every key of a bucket with its ETag and size, read with the read-only account. */
async function bucketState(info: S3ClusterInfo, bucket: string): Promise<string[]> {
  const s3 = s3TestClient(info, "reader");
  const out: string[] = [];
  try {
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const o of page.Contents ?? []) out.push(`${o.Key} ${o.ETag} ${o.Size}`);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } finally {
    s3.destroy();
  }
  return out.sort();
}

/** The run document, or a failure that shows what the CLI said instead. */
function parseRun(r: { stdout: string; stderr: string; code: number | null }): RunResult {
  try {
    return JSON.parse(r.stdout) as RunResult;
  } catch {
    throw new Error(`attest exited ${r.code} without a JSON document: ${r.stderr.slice(-3000)}`);
  }
}

describe("pgbackrest source on an S3 repository (repo1-type=s3, read-only keys)", () => {
  let info: S3ClusterInfo;
  let bucket: string;
  let expected: Expected;
  let dir: string;
  let conf: string;
  let confByName: string;
  const runs: string[] = [];

  beforeAll(async () => {
    info = await s3Cluster();
    bucket = await createTestBucket("attest-pgbr");
    dir = mkdtempSync(join(tmpdir(), "attest-s3-pgbr-"));
    execFileSync(
      "bash",
      [resolve("fixtures/build-s3-backups.sh"), "pgbackrest", join(dir, "built"), "pgbr"],
      {
        stdio: ["ignore", "ignore", "inherit"],
        timeout: 240_000,
        env: {
          PATH: process.env.PATH,
          S3_ENDPOINT: info.httpsEndpoint,
          S3_REGION: info.region,
          S3_BUCKET: bucket,
          S3_ACCESS_KEY_ID: info.writer.accessKeyId,
          S3_SECRET_ACCESS_KEY: info.writer.secretAccessKey,
          S3_CA_FILE: info.caFile,
        },
      },
    );
    expected = JSON.parse(readFileSync(join(dir, "built", "expected.json"), "utf8")) as Expected;
    // Attest's own pgbackrest.conf: the read-only account, owner-only like any file with keys
    copyFileSync(info.caFile, join(dir, "ca.crt"));
    const { hostname } = new URL(info.httpsEndpoint);
    // by address, and by name (the certificate names localhost too): the sandbox resolves it from
    // the synthetic /etc/hosts the relay writes
    conf = writeConf("pgbackrest.conf", hostname);
    confByName = writeConf("pgbackrest-by-name.conf", "localhost");
  });

  /** An owner-only pgbackrest.conf for the read-only account, with the endpoint named `host`. */
  const writeConf = (name: string, host: string, secret = info.reader.secretAccessKey) => {
    const { port } = new URL(info.httpsEndpoint);
    const file = join(dir, name);
    writeFileSync(
      file,
      [
        "[global]",
        "repo1-type=s3",
        `repo1-path=/${expected.prefix}`,
        `repo1-s3-endpoint=${host}`,
        `repo1-storage-port=${port}`,
        `repo1-s3-bucket=${bucket}`,
        `repo1-s3-region=${info.region}`,
        "repo1-s3-uri-style=path",
        `repo1-s3-key=${info.reader.accessKeyId}`,
        `repo1-s3-key-secret=${secret}`,
        `repo1-storage-ca-file=${join(dir, "ca.crt")}`,
        "",
        "[demo]",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    return file;
  };

  afterAll(async () => {
    for (const id of runs) expect(localSandboxes(id), `sandboxes of run ${id}`).toEqual([]);
    const ps = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
    // nothing of this file's runs (their sandbox directories name the run) is left running
    expect(ps.split("\n").filter((l) => runs.some((id) => l.includes(`attest-${id}-`)))).toEqual([]);
    if (bucket) await deleteTestBucket(bucket);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const config = (ws: string, file: string) => `sources:
  - name: pgbr-s3
    type: pgbackrest
    stanza: demo
    config_file: ${file}
    checks:
      queries:
        - { name: markers, database: postgres, sql: "select string_agg(label, ',' order by id) from markers", expect: "= ${expected.markers.map((m) => m.label).join(",")}" }
history: { csv: ${ws}/history.csv }
reports: { dir: ${ws}/reports }
`;

  /** Runs attest ARGS against a fresh workspace and checks the bucket is the same afterwards. */
  const run = async (args: string[], file = conf) => {
    const ws = workspace((d) => config(d, file));
    try {
      const before = await bucketState(info, bucket);
      const r = await attest([...args, "--config", ws.config, "--json"]);
      expect(await bucketState(info, bucket)).toEqual(before);
      return r;
    } finally {
      rmSync(ws.dir, { recursive: true, force: true });
    }
  };

  it("lists the backup from the bucket, and repo-ls finds no gap", async () => {
    const r = await run(["list"]);
    const doc = JSON.parse(r.stdout) as {
      sources: Array<{
        backups: Array<{ id: string; location: string; format: string }>;
        findings: unknown[];
      }>;
    };
    const src = doc.sources[0]!;
    expect(src.backups.map((b) => b.id)).toEqual([expected.backup_id]);
    expect(src.backups[0]!.location).toBe(
      `s3://${bucket}/${expected.prefix}/backup/demo/${expected.backup_id}`,
    );
    expect(src.backups[0]!.format).toBe("pgbackrest-full");
    expect(src.findings).toEqual([]);
  });

  it("drills the backup to the end of the archive, confined, with network to the store only (endpoint by name)", async () => {
    const r = await run(["drill", "--source", "pgbr-s3"], confByName);
    const doc = parseRun(r);
    runs.push(doc.run.id);
    const d = doc.drills[0]!;
    expect(d.verdict, d.reason).toBe("pass");
    expect(r.code).toBe(0);
    expect(d.checks.find((c) => c.name === "query: markers")?.status).toBe("pass");
    expect(Date.parse(d.reached!.timestamp!)).toBeGreaterThanOrEqual(
      Date.parse(expected.markers.at(-1)!.committedAt),
    );
    expect(d.notes?.join("\n")).toMatch(/only network pgbackrest had \(store relay\)/);
  });

  it("a wrong secret in pgbackrest.conf is Attest's error (exit 3) naming the S3 code, and the secret is stored nowhere", async () => {
    const secret = `WrongSecret${"x".repeat(29)}`;
    const file = writeConf("pgbackrest-wrong.conf", new URL(info.httpsEndpoint).hostname, secret);
    const ws = workspace((d) => config(d, file));
    try {
      const before = await bucketState(info, bucket);
      const r = await attest([
        "audit",
        "--source",
        "pgbr-s3",
        "--no-mail",
        "--verbose",
        "--config",
        ws.config,
        "--json",
      ]);
      expect(await bucketState(info, bucket)).toEqual(before);
      expect(r.code, r.stderr.slice(-2000)).toBe(3);
      const doc = parseRun(r);
      const failed = (doc.findings ?? []).find((f) => f.kind === "list_failed");
      expect(failed?.message).toMatch(/SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied/);
      expect((doc.findings ?? []).map((f) => f.kind)).not.toContain("stanza_status");
      const stored = [r.stdout, r.stderr, ...readdirRecursive(ws.dir).map((f) => readFileSync(f, "utf8"))];
      for (const text of stored) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain("CanonicalRequest");
      }
    } finally {
      rmSync(ws.dir, { recursive: true, force: true });
    }
  });

  it("a WAL object deleted from the bucket: the drill fails at that segment and the listing names the gap", async () => {
    const [, gone] = expected.wal_after_backup;
    const s3 = s3TestClient(info, "writer");
    try {
      const listed = await s3.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: `${expected.prefix}/archive/demo/15-1/${gone!.slice(0, 16)}/${gone}-`,
        }),
      );
      const key = listed.Contents?.[0]?.Key;
      expect(key).toBeDefined();
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key! }));
    } finally {
      s3.destroy();
    }
    const r = await run(["audit", "--source", "pgbr-s3", "--no-mail"]);
    const doc = parseRun(r);
    runs.push(doc.run.id);
    expect(r.code).toBe(1);
    const d = doc.drills[0]!;
    expect(d.verdict).toBe("fail");
    expect(d.reason).toContain(gone);
    const gap = (doc.findings ?? []).find((f) => f.kind === "wal_gap");
    expect(gap?.message).toContain(`segments after ${expected.wal_after_backup[0]} are missing`);
    expect(gap?.message).toContain(`continues at ${expected.wal_after_backup[2]}`);
  });
});

/** Every file under `dir` (history, reports, run JSON), for a look for secrets. */
function readdirRecursive(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}
