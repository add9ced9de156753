/**
 * pgBackRest repositories in a real S3 store (Ceph RGW on loopback), and the store relay that
 * gives a confined tool network to the store and nothing else.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConfined } from "../src/runtimes/local/confine.js";
import { forwardArgs, startStoreRelay } from "../src/runtimes/local/store-relay.js";
import { isRoot, lookupUser } from "../src/util/os-user.js";
import { deleteObject, keysUnder, readerBucketState } from "./support/s3.js";
import {
  attestOnBucket,
  parseRun,
  type ScratchBucket,
  useS3Backups,
  writePgbackrestConf,
} from "./support/s3-cli.js";

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

describe("pgbackrest source on an S3 repository (repo1-type=s3, read-only keys)", () => {
  let bucket: string;
  let expected: Expected;
  let lab: ScratchBucket;
  let conf: string;
  let confByName: string;
  const { runs } = useS3Backups<Expected>(
    { label: "attest-s3-pgbr", kind: "pgbackrest", prefix: "pgbr", timeoutMs: 240_000 },
    (built) => {
      ({ bucket, expected } = built);
      lab = built;
      // Attest's own pgbackrest.conf, by address and by name (the certificate names localhost too):
      // the sandbox resolves it from the synthetic /etc/hosts the relay writes
      conf = writePgbackrestConf(lab, "pgbackrest.conf", expected.prefix);
      confByName = writePgbackrestConf(lab, "pgbackrest-by-name.conf", expected.prefix, {
        host: "localhost",
      });
    },
  );

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
  const run = (args: string[], file = conf, readWorkspace?: (dir: string) => void) =>
    attestOnBucket(bucket, (d) => config(d, file), args, { listing: readerBucketState, readWorkspace });

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
    const file = writePgbackrestConf(lab, "pgbackrest-wrong.conf", expected.prefix, { secret });
    let files: string[] = [];
    const r = await run(["audit", "--source", "pgbr-s3", "--no-mail", "--verbose"], file, (ws) => {
      files = readdirRecursive(ws).map((f) => readFileSync(f, "utf8"));
    });
    expect(r.code, r.stderr.slice(-2000)).toBe(3);
    const doc = parseRun(r);
    const failed = (doc.findings ?? []).find((f) => f.kind === "list_failed");
    expect(failed?.message).toMatch(/SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied/);
    expect((doc.findings ?? []).map((f) => f.kind)).not.toContain("stanza_status");
    for (const text of [r.stdout, r.stderr, ...files]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain("CanonicalRequest");
    }
  });

  it("a WAL object deleted from the bucket: the drill fails at that segment and the listing names the gap", async () => {
    const [, gone] = expected.wal_after_backup;
    const [key] = await keysUnder(
      bucket,
      `${expected.prefix}/archive/demo/15-1/${gone!.slice(0, 16)}/${gone}-`,
    );
    expect(key).toBeDefined();
    await deleteObject(bucket, key!);
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
