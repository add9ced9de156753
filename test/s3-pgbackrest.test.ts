/**
 * pgBackRest repositories in a real S3 store (Ceph RGW on loopback), and the store relay that
 * gives a confined tool network to the store and nothing else.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConfined } from "../src/runtimes/local/confine.js";
import { forwardArgs, startStoreRelay } from "../src/runtimes/local/store-relay.js";
import { isRoot, lookupUser } from "../src/util/os-user.js";

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
