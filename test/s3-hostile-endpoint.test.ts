/**
 * A hostile S3 endpoint on 127.0.0.1 (node http, one bucket per misbehaviour): Attest's real CLI
 * must end every run with an `error` or a finding, stop reading what it does not need, and never
 * store or print the store's secret or session token, whatever the store echoes.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HISTORY_COLUMNS, type HistoryRecord } from "../src/history/history-record.js";
import { HistoryStore } from "../src/history/history-store.js";
import { attest as attestCli, DUMPS, localSandboxesOf, workspace } from "./support/cli.js";

const DUMP = readFileSync(join(DUMPS, "good", "crm_20261120T0300.dump"));
const KEY = "d/crm_20261120T0300.dump";
const SECRET = randomBytes(20).toString("hex");
const TOKEN = `TOKEN-${randomBytes(12).toString("hex")}`;
/** Text only in fields of an error document other than <Code> and <Message>. */
const MARKER = `CANONICAL-${randomBytes(6).toString("hex")}`;

/** What the endpoint saw per bucket. */
interface Seen {
  requests: number;
  /** Bodies the client stopped reading before the endpoint had finished them. */
  abandoned: number;
}

const xmlHead = (bucket: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${bucket}</Name><Prefix>d/</Prefix><MaxKeys>1000</MaxKeys>`;
const entry = (key: string, size: number) =>
  `<Contents><Key>${key}</Key><LastModified>2026-12-01T00:00:00.000Z</LastModified><ETag>"abc"</ETag><Size>${size}</Size><StorageClass>STANDARD</StorageClass></Contents>`;

/** Writes `chunk` until the client goes away; counts it as abandoned then. */
function endless(res: ServerResponse, chunk: Buffer | string, seen: Seen): void {
  let stopped = false;
  res.on("close", () => {
    stopped = true;
    if (!res.writableFinished) seen.abandoned += 1;
  });
  const pump = () => {
    while (!stopped && res.write(chunk)) {
      /* until the socket's buffer is full */
    }
  };
  res.on("drain", pump);
  pump();
}

function handle(req: IncomingMessage, res: ServerResponse, seenOf: (bucket: string) => Seen): unknown {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  const [bucket = "", ...rest] = url.pathname.slice(1).split("/");
  const key = decodeURIComponent(rest.join("/"));
  const seen = seenOf(bucket);
  seen.requests += 1;
  const isList = req.method === "GET" && url.searchParams.get("list-type") === "2";
  const xml = (status: number, body: string) => {
    res.writeHead(status, { "content-type": "application/xml" });
    res.end(req.method === "HEAD" ? undefined : body);
  };
  const echo = () =>
    xml(
      403,
      `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>echo: token=${String(req.headers["x-amz-security-token"])} secret=${SECRET}</Message><CanonicalRequest>GET /${bucket} x-amz-security-token:${String(req.headers["x-amz-security-token"])} ${MARKER}</CanonicalRequest><StringToSign>${MARKER}</StringToSign></Error>`,
    );

  if (bucket === "echo-all") return echo();
  if (isList) {
    if (bucket === "repeat-token") {
      // every page is "truncated" with the same token, and brings new keys
      const keys = Array.from({ length: 1000 }, (_, i) => entry(`d/k${seen.requests}-${i}`, 10)).join("");
      return xml(
        200,
        `${xmlHead(bucket)}<IsTruncated>true</IsTruncated><NextContinuationToken>same</NextContinuationToken>${keys}</ListBucketResult>`,
      );
    }
    if (bucket === "endless-list") {
      res.writeHead(200, { "content-type": "application/xml" });
      res.write(`${xmlHead(bucket)}<IsTruncated>false</IsTruncated>`);
      const chunk = Array.from({ length: 500 }, (_, i) => entry(`d/e-${i}-${"x".repeat(200)}`, 10)).join("");
      return endless(res, chunk, seen);
    }
    if (bucket === "stalled-list") {
      // the headers and a first byte, then nothing: only a deadline ends this
      res.writeHead(200, { "content-type": "application/xml" });
      res.write("<");
      res.on("close", () => {
        if (!res.writableFinished) seen.abandoned += 1;
      });
      return;
    }
    const keys =
      bucket === "control-key"
        ? entry("d/crm\n_20261120T0300.dump", DUMP.length)
        : bucket === "many-keys"
          ? Array.from({ length: 10 }, (_, i) => entry(`d/a${i}.txt`, 1)).join("")
          : "";
    return xml(
      200,
      `${xmlHead(bucket)}<IsTruncated>false</IsTruncated>${keys}${entry(KEY, DUMP.length)}</ListBucketResult>`,
    );
  }
  if (key !== KEY) return xml(404, "<Error><Code>NoSuchKey</Code><Message>no</Message></Error>");
  if (req.method === "HEAD") {
    res.writeHead(200, { "content-length": String(DUMP.length), etag: '"abc"' });
    res.end();
    return;
  }
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
  if (bucket === "endless-get") {
    // Range ignored, no length, no end
    res.writeHead(200, { "content-type": "application/octet-stream", etag: '"abc"' });
    return endless(res, Buffer.alloc(1 << 20, 0x50), seen);
  }
  if (range) {
    const from = Number(range[1]);
    const to = range[2] ? Math.min(Number(range[2]), DUMP.length - 1) : DUMP.length - 1;
    const part = DUMP.subarray(from, to + 1);
    res.writeHead(206, {
      "content-length": String(part.length),
      "content-range": `bytes ${from}-${to}/${DUMP.length}`,
      etag: '"abc"',
    });
    return res.end(part);
  }
  if (bucket === "echo-get") return echo();
  if (bucket === "endless-full") {
    // the whole object, then more, chunked (no Content-Length to hold the client to)
    res.writeHead(200, { "content-type": "application/octet-stream", etag: '"abc"' });
    res.write(DUMP);
    return endless(res, Buffer.alloc(1 << 20, 0x50), seen);
  }
  res.writeHead(200, { "content-length": String(DUMP.length), etag: '"abc"' });
  res.end(DUMP);
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe("a hostile S3 endpoint", () => {
  let server: Server;
  let port: number;
  const seen = new Map<string, Seen>();
  const seenOf = (bucket: string) => {
    const s = seen.get(bucket) ?? { requests: 0, abandoned: 0 };
    seen.set(bucket, s);
    return s;
  };
  // the CLI processes this file started: only their sandboxes are this file's to find left
  // (another test file may have sandboxes of its own alive at the same time)
  const pids: number[] = [];
  const attest = (args: string[], opts: Parameters<typeof attestCli>[1] = {}) =>
    attestCli(args, { ...opts, onSpawn: (pid) => pids.push(pid) });

  beforeAll(async () => {
    server = createServer((req, res) => handle(req, res, seenOf));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(pids.length).toBeGreaterThan(0);
    expect(pids.flatMap((pid) => localSandboxesOf(pid))).toEqual([]);
  });

  /** A workspace whose one source reads `bucket` of the endpoint. */
  function ws(bucket: string, extra = "") {
    return workspace(
      (dir) => `storage:
  evil:
    type: s3
    endpoint: http://127.0.0.1:${port}
    region: us-east-1
    bucket: ${bucket}
    path_style: true
    access_key_id: AKIAHOSTILETEST00001
    secret_access_key: "\${HOSTILE_SECRET}"
    session_token: "\${HOSTILE_TOKEN}"
    max_attempts: 2
${extra}
sandbox: { runtime: local, timeout: 10m }
sources:
  - name: s
    type: dump-dir
    storage: evil
    path: d/
history: { csv: ${dir}/history.csv }
reports: { dir: ${dir}/reports, pdf: false }
`,
    );
  }
  const env = { HOSTILE_SECRET: SECRET, HOSTILE_TOKEN: TOKEN };

  /** `attest list --json` over the bucket: the source's listing result. */
  async function listOf(bucket: string, extra = "") {
    const { config } = ws(bucket, extra);
    const r = await attest(["list", "--config", config, "--json"], { env });
    const doc = JSON.parse(r.stdout) as {
      sources: Array<{
        name: string;
        error?: string;
        backups: Array<{ id: string }>;
        findings: Array<{ kind: string; message: string }>;
      }>;
    };
    return { r, source: doc.sources[0]! };
  }

  it("refuses a listing that repeats its continuation token", async () => {
    const { source } = await listOf("repeat-token");
    expect(source.findings.map((f) => f.kind)).toContain("list_failed");
    expect(source.error).toMatch(/repeats its listing/);
    // the second page already repeats the first's token: no third request
    expect(seenOf("repeat-token").requests).toBe(2);
  });

  it("refuses a listing with more keys than max_keys_listed", async () => {
    const { source } = await listOf("many-keys", "    max_keys_listed: 5");
    expect(source.findings.map((f) => f.kind)).toContain("list_failed");
    expect(source.error).toMatch(/lists more than 5 keys \(max_keys_listed\)/);
  });

  it("stops reading a listing answer past 16 MiB", async () => {
    const { source } = await listOf("endless-list");
    expect(source.error).toMatch(/longer than 16777216 bytes/);
    expect(seenOf("endless-list").abandoned).toBeGreaterThanOrEqual(1);
  });

  it("gives up a stalled listing at list_timeout", async () => {
    const { source } = await listOf("stalled-list", "    list_timeout: 2s");
    expect(source.findings.map((f) => f.kind)).toContain("list_failed");
    expect(source.error).toMatch(/took longer than list_timeout \(2\.0s\)/);
    expect(seenOf("stalled-list").abandoned).toBe(1);
  });

  it("reads only the head it asked for when the store ignores Range", async () => {
    const { r, source } = await listOf("endless-get");
    expect(r.code).not.toBeNull();
    expect(source.name).toBe("s");
    // one body per head read, each dropped once its 64 KiB arrived
    expect(seenOf("endless-get").abandoned).toBeGreaterThanOrEqual(1);
  });

  it("does not list a key with a control character, and says so in a finding naming it", async () => {
    const { source } = await listOf("control-key");
    expect(source.backups.map((b) => b.id)).toEqual(["crm_20261120T0300.dump"]);
    const unlisted = source.findings.filter((f) => f.kind === "unlisted_objects");
    expect(unlisted).toHaveLength(1);
    expect(unlisted[0]!.message).toContain("1 object(s) under s3://control-key/d/ are not listed");
    // the key is named JSON-quoted: its newline is shown, never printed raw
    expect(unlisted[0]!.message).toContain('"d/crm\\n_20261120T0300.dump"');
  });

  it("stops a fetch as soon as the store sent more than the object's size", async () => {
    const { config } = ws("endless-full");
    const r = await attest(["drill", "--config", config, "--source", "s", "--json", "--no-mail"], { env });
    const doc = JSON.parse(r.stdout) as { drills: Array<{ verdict: string; reason: string }> };
    expect(doc.drills).toHaveLength(1);
    expect(doc.drills[0]!.verdict).toBe("error");
    expect(doc.drills[0]!.reason).toMatch(new RegExp(`sent more than the ${DUMP.length} bytes`));
    expect(seenOf("endless-full").abandoned).toBeGreaterThanOrEqual(1);
  });

  for (const bucket of ["echo-get", "echo-all"]) {
    it(`stores and prints neither the secret nor the token a store echoes (${bucket})`, async () => {
      const { dir, config } = ws(bucket);
      const r = await attest(["audit", "--config", config, "--json", "--no-mail", "--verbose"], { env });
      const written = filesUnder(dir).filter((f) => !f.endsWith("attest.yml"));
      const runs = written.filter((f) => f.includes(`${join("reports", "runs")}/`));
      expect(runs).toHaveLength(1);
      const run = readFileSync(runs[0]!, "utf8");
      if (bucket === "echo-get") {
        // the drill ran and failed on the fetch: the echoed text is in its reason, masked
        const history = new HistoryStore(join(dir, "history.csv")).read();
        const drill = history.find((h) => h.recordType === "drill")!;
        expect(drill.verdict).toBe("error");
        expect(drill.reason).toMatch(/SignatureDoesNotMatch \(HTTP 403\): echo: token=\*\*\* secret=\*\*\*/);
      } else {
        expect(run).toMatch(/list_failed/);
        expect(run).toMatch(/echo: token=\*\*\* secret=\*\*\*/);
      }
      for (const text of [r.stdout, r.stderr, ...written.map((f) => readFileSync(f, "latin1"))]) {
        expect(text).not.toContain(SECRET);
        expect(text).not.toContain(TOKEN);
        expect(text).not.toContain(MARKER);
      }
    });
  }
});

describe("history.csv and spreadsheet formulas", () => {
  it("writes formula-like text with a leading ' and reads it back unchanged", () => {
    const { dir } = workspace(() => "");
    const store = new HistoryStore(join(dir, "history.csv"));
    const row = Object.fromEntries(HISTORY_COLUMNS.map((c) => [c, ""])) as HistoryRecord;
    Object.assign(row, {
      recordType: "drill",
      runId: "r1",
      backupId: '=HYPERLINK("http://x")_20261120T0300.dump',
      reason: "+1 -2",
      series: "'=already quoted",
      source: "@s",
      message: "\tx",
      sizeBytes: "-1",
      totalMs: "12",
    });
    store.append([row]);
    const text = readFileSync(store.path, "utf8");
    expect(text).toContain(`"'=HYPERLINK(""http://x"")_20261120T0300.dump"`);
    expect(text).toContain(`"''=already quoted"`);
    expect(text).toContain(`"'+1 -2"`);
    expect(text).toContain(`"-1"`);
    const [back] = store.read();
    const { prevHash: _p, hash: _h, ...got } = back!;
    const { prevHash: _p2, hash: _h2, ...want } = row;
    expect(got).toEqual(want);
    expect(store.verify().ok).toBe(true);
  });
});
