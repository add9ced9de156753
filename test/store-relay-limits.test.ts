/**
 * The store relay's limits (S3-7): a sandbox that floods the relay's socket gets at most the cap
 * relayed at once (the rest closed and counted), and an idle relayed connection is closed. The
 * real relay against a small TCP server on loopback that holds every connection open.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RELAY_MAX_CONNECTIONS, startStoreRelay } from "../src/runtimes/local/store-relay.js";

/** A TCP server on 127.0.0.1 that keeps every connection and tells when it has `n` of them. */
async function holdingServer(): Promise<{
  server: Server;
  port: number;
  held: Socket[];
  reach(n: number): Promise<void>;
}> {
  const held: Socket[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const server = createServer((s) => {
    held.push(s);
    s.on("error", () => {});
    // flowing, so the relay's FIN is read and the socket closes
    s.resume();
    for (const w of waiters.filter((x) => held.length >= x.n)) w.resolve();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const reach = (n: number) =>
    held.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }));
  return { server, port, held, reach };
}

describe("store relay limits", () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  /** A holding store and a relay to it in a fresh directory, both gone after the test. */
  async function relayToStore(name: string, opts: { idleMs?: number } = {}) {
    const store = await holdingServer();
    const dir = mkdtempSync(join(tmpdir(), `attest-relay-${name}-`));
    const relay = await startStoreRelay({ endpoint: { host: "127.0.0.1", port: store.port }, dir, ...opts });
    cleanup.push(
      () => rmSync(dir, { recursive: true, force: true }),
      () => new Promise<void>((resolve) => store.server.close(() => resolve())),
      () => {
        for (const s of store.held) s.destroy();
      },
      () => relay.close(),
    );
    return { store, relay };
  }

  it("relays at most the cap of concurrent connections; the rest are closed at once and counted", async () => {
    const { store, relay } = await relayToStore("limit");
    const clients: Socket[] = [];
    cleanup.push(() => {
      for (const c of clients) c.destroy();
    });
    const total = 100;
    let closedEarly = 0;
    let allClosed: () => void = () => {};
    const refusedAll = new Promise<void>((resolve) => {
      allClosed = resolve;
    });
    for (let i = 0; i < total; i++) {
      const c = createConnection(relay.socketPath);
      c.on("error", () => {});
      c.on("close", () => {
        closedEarly++;
        if (closedEarly === total - RELAY_MAX_CONNECTIONS) allClosed();
      });
      clients.push(c);
    }
    await Promise.all([store.reach(RELAY_MAX_CONNECTIONS), refusedAll]);
    // every one of the 100 has been accepted or refused by now: the store saw the cap, no more
    expect(relay.connections() + relay.refused()).toBe(total);
    expect(relay.connections()).toBe(RELAY_MAX_CONNECTIONS);
    expect(relay.refused()).toBe(total - RELAY_MAX_CONNECTIONS);
    expect(store.held.length).toBe(RELAY_MAX_CONNECTIONS);
  });

  it("closes a relayed connection that stays idle", async () => {
    const { store, relay } = await relayToStore("idle", { idleMs: 200 });
    const c = createConnection(relay.socketPath);
    c.on("error", () => {});
    cleanup.push(() => {
      c.destroy();
    });
    await store.reach(1);
    // both ends go: the sandbox's side and the store's side
    await Promise.all([
      new Promise<void>((resolve) => c.once("close", () => resolve())),
      new Promise<void>((resolve) => store.held[0]!.once("close", () => resolve())),
    ]);
    expect(relay.connections()).toBe(1);
  });
});
