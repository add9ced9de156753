/**
 * Network to the object store only, for a confined tool (pgbackrest, barman-cloud-*). The sandbox
 * keeps its own network namespace (loopback only). Attest listens on a Unix socket inside a
 * directory the sandbox sees and relays each connection made there to the store's endpoint and to
 * nothing else; inside, socat listens on the endpoint's own loopback address and port and hands
 * each connection to that socket. TLS runs end to end between the tool and the store: the relay
 * sees only ciphertext and holds no credentials, and the tool's endpoint URL is unchanged.
 */

import { lookup } from "node:dns/promises";
import { chmodSync, chownSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createConnection, createServer, isIP, type Socket } from "node:net";
import { join } from "node:path";
import { coerceError } from "../../util/errors.js";
import { isRoot, type OsUser } from "../../util/os-user.js";

/** Where a store is reached: the endpoint URL's host and port. */
export interface StoreEndpoint {
  /** Host name or address as the tool's URL names it. */
  host: string;
  port: number;
}

/** The host and port of an endpoint URL (https: 443, http: 80 when none is given). */
export function endpointOf(url: string): StoreEndpoint {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = u.port ? Number(u.port) : u.protocol === "http:" ? 80 : 443;
  return { host, port };
}

/** A running relay; closing it ends every connection it carries. */
export interface StoreRelay extends AsyncDisposable {
  /** The endpoint every connection goes to. */
  readonly endpoint: StoreEndpoint;
  /** The address the relay connects to (the endpoint's host resolved once, at start). */
  readonly address: string;
  /** The Unix socket a confined forwarder connects to. */
  readonly socketPath: string;
  /** Connections relayed so far. */
  connections(): number;
  /** Connections closed unrelayed because `maxConnections` were open (a flood from the sandbox, S3-7). */
  refused(): number;
  close(): Promise<void>;
}

/** Options of startStoreRelay. */
export interface StoreRelayOptions {
  endpoint: StoreEndpoint;
  /** An existing directory the confined tool sees; the socket is made in it. */
  dir: string;
  /** The account the confined tool runs as (it must connect to the socket); undefined: ours. */
  owner?: OsUser | undefined;
  /** Connections relayed at once (default RELAY_MAX_CONNECTIONS); more are closed at once and counted. */
  maxConnections?: number;
  /** A relayed connection with no traffic this long is closed (default RELAY_IDLE_MS). */
  idleMs?: number;
}

/**
 * At most this many relayed connections at once per sandbox: pgBackRest opens process-max,
 * boto3 up to 10. Each one is a descriptor of Attest's own process and a connection to the store,
 * so a backup's code that floods the socket must not exhaust either (S3-7).
 */
export const RELAY_MAX_CONNECTIONS = 32;
/** Idle limit of a relayed connection: longer than any store answer, short enough that held-open ones go. */
export const RELAY_IDLE_MS = 300_000;

/**
 * Starts a relay from `dir/store.sock` to the endpoint. The endpoint's host is resolved once and
 * the address pinned: a name that later resolves elsewhere cannot redirect the relay.
 */
export async function startStoreRelay(opts: StoreRelayOptions): Promise<StoreRelay> {
  const { endpoint } = opts;
  // IPv4 first: `localhost` may resolve to ::1 while the store listens on 127.0.0.1 only
  const address = isIP(endpoint.host)
    ? endpoint.host
    : ((await lookup(endpoint.host, { all: true })).sort((a, b) => a.family - b.family)[0]?.address ??
      endpoint.host);
  const socketPath = join(opts.dir, "store.sock");
  if (existsSync(socketPath)) rmSync(socketPath, { force: true });
  const live = new Set<Socket>();
  let count = 0;
  let refused = 0;
  let active = 0;
  const max = opts.maxConnections ?? RELAY_MAX_CONNECTIONS;
  const idleMs = opts.idleMs ?? RELAY_IDLE_MS;
  const server = createServer({ allowHalfOpen: true }, (inner) => {
    if (active >= max) {
      refused++;
      inner.destroy();
      return;
    }
    active++;
    count++;
    // no Nagle: S3 clients send small requests and wait for each answer (40 ms stalls otherwise)
    const outer = createConnection({
      host: address,
      port: endpoint.port,
      allowHalfOpen: true,
      noDelay: true,
    });
    live.add(inner);
    live.add(outer);
    let ended = false;
    const end = () => {
      if (!ended) {
        ended = true;
        active--;
      }
      inner.destroy();
      outer.destroy();
      live.delete(inner);
      live.delete(outer);
    };
    inner.on("error", end).on("close", end);
    outer.on("error", end).on("close", end);
    // idle in both directions (data either way resets each socket's timer)
    inner.setTimeout(idleMs, end);
    outer.setTimeout(idleMs, end);
    inner.pipe(outer);
    outer.pipe(inner);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) =>
      reject(new Error(`store relay: cannot listen on ${socketPath}`, { cause: err })),
    );
    server.listen(socketPath, () => resolve());
  });
  // only the tool's account may connect; the directory is the caller's
  if (opts.owner) chownSync(socketPath, opts.owner.uid, opts.owner.gid);
  chmodSync(socketPath, 0o600);
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= new Promise<void>((resolve) => {
      for (const s of live) s.destroy();
      live.clear();
      server.close(() => {
        rmSync(socketPath, { force: true });
        resolve();
      });
    });
    return closed;
  };
  return {
    endpoint,
    address,
    socketPath,
    connections: () => count,
    refused: () => refused,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * The forwarder a confined tool is started through: `sh -c FORWARD_SCRIPT attest-store HOST PORT
 * SOCKET PROGRAM ARGS…`. It starts socat listening on HOST:PORT inside the sandbox's own network
 * namespace, waits until the port listens (from /proc/net/tcp, no guessing), runs the program and
 * stops socat. HOST is a loopback address; for a host name, the sandbox's /etc/hosts names it.
 */
export const FORWARD_SCRIPT = [
  "host=$1 port=$2 sock=$3; shift 3",
  'case "$host" in *:*) listen="TCP6-LISTEN:$port,bind=[$host]"; table=/proc/net/tcp6 ;; *) listen="TCP4-LISTEN:$port,bind=$host"; table=/proc/net/tcp ;; esac',
  'socat "$listen,fork,reuseaddr,nodelay" "UNIX-CONNECT:$sock" 2>/dev/null &',
  "relay=$!",
  'hex=$(printf "%04X" "$port")',
  "n=0",
  // a listening socket on the port (state 0A); socat binds within milliseconds, 10 s means it cannot
  'until grep -q -E "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:[0-9A-F]+ 0A " "$table" 2>/dev/null; do',
  '  if ! kill -0 "$relay" 2>/dev/null || [ "$n" -ge 1000 ]; then echo "attest: the store forwarder could not listen on $host:$port" >&2; exit 70; fi',
  "  n=$((n + 1)); sleep 0.01",
  "done",
  '"$@"',
  "rc=$?",
  'kill "$relay" 2>/dev/null',
  'wait "$relay" 2>/dev/null',
  'exit "$rc"',
].join("\n");

/** `sh -c` arguments that run `program args` behind the forwarder to `relay`. */
export function forwardArgs(
  relay: Pick<StoreRelay, "endpoint" | "socketPath">,
  program: string,
  args: readonly string[],
): string[] {
  return [
    "-c",
    FORWARD_SCRIPT,
    "attest-store",
    listenHost(relay.endpoint),
    String(relay.endpoint.port),
    relay.socketPath,
    program,
    ...args,
  ];
}

/** The loopback address the forwarder listens on: the endpoint's own when it is one, else 127.0.0.1. */
export function listenHost(endpoint: StoreEndpoint): string {
  if (endpoint.host === "::1") return "::1";
  return /^127\.\d+\.\d+\.\d+$/.test(endpoint.host) ? endpoint.host : "127.0.0.1";
}

/**
 * Writes the forwarder as an executable script (for a restore_command, which the server runs
 * through sh and which cannot carry the script inline): `PATH PROGRAM ARGS…`. With `envFile`,
 * the program alone gets the variables that file sets (its credentials), not the server.
 * The caller's directory keeps it out of the sandbox user's reach (root-owned, not writable).
 */
export function writeForwardScript(
  path: string,
  relay: Pick<StoreRelay, "endpoint" | "socketPath">,
  envFile?: string,
): void {
  const lines = [
    "#!/bin/sh",
    "# written by attest: runs a program with the object store reachable, and nothing else",
    ...(envFile ? [`. ${shellQuote(envFile)}`] : []),
    `set -- ${shellQuote(listenHost(relay.endpoint))} ${relay.endpoint.port} ${shellQuote(relay.socketPath)} "$@"`,
    FORWARD_SCRIPT,
    "",
  ];
  writeFileSync(path, lines.join("\n"), { mode: 0o755 });
  chmodSync(path, 0o755);
}

/** Writes `export K='V'` lines readable by `owner` alone (the tool's credentials for the forwarder). */
export function writeEnvFile(path: string, env: Record<string, string>, owner: OsUser | undefined): void {
  const text = Object.entries(env)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}\n`)
    .join("");
  writeFileSync(path, text, { mode: 0o600 });
  if (owner) chownSync(path, owner.uid, owner.gid);
  chmodSync(path, 0o600);
}

/** A private directory for the relay's socket and the tool's store files (0711: enterable, not listable). */
export function makeStoreDir(path: string): string {
  try {
    mkdirSync(path, { mode: 0o711 });
  } catch (err) {
    throw new Error(`cannot make the store directory ${path}`, { cause: coerceError(err) });
  }
  chmodSync(path, 0o711);
  return path;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * For an endpoint given as a host name: `hosts` and `nsswitch.conf` for a synthetic /etc
 * (confine.ts binds them when present) that resolve the name, and `names` (a virtual-hosted
 * bucket's `bucket.host`), to the loopback address the forwarder listens on. The sandbox has no
 * resolver of its own. Nothing is written for an address.
 */
export function writeStoreNames(
  etcDir: string,
  endpoint: StoreEndpoint,
  names: readonly string[] = [],
): void {
  if (isIP(endpoint.host)) return;
  const all = [endpoint.host, ...names].filter((n) => /^[A-Za-z0-9.-]+$/.test(n));
  writeFileSync(join(etcDir, "hosts"), `127.0.0.1 ${[...new Set(all)].join(" ")}\n`, { mode: 0o644 });
  writeFileSync(join(etcDir, "nsswitch.conf"), "hosts: files\n", { mode: 0o644 });
}

/** The store made reachable for the processes of one local sandbox. */
export interface SandboxStore extends AsyncDisposable {
  readonly relay: StoreRelay;
  /** An executable inside the sandbox: `script PROGRAM ARGS…` runs the program with the store reachable and its env set. */
  readonly script: string;
  close(): Promise<void>;
}

/**
 * Opens the store to a local sandbox's processes: `<sandbox dir>/store/` (Attest's, 0711) holds
 * the relay's socket, the forwarder script and the tool's environment file (the sandbox
 * account's, 0600). Everything goes with close() and, at the latest, with the sandbox directory.
 */
export async function openSandboxStore(
  sandboxDir: string,
  endpoint: StoreEndpoint,
  env: Record<string, string>,
  names: readonly string[] = [],
): Promise<SandboxStore> {
  const home = statSync(join(sandboxDir, "home"));
  const owner = isRoot()
    ? { name: "sandbox", uid: home.uid, gid: home.gid, home: "/nonexistent" }
    : undefined;
  const dir = join(sandboxDir, "store");
  makeStoreDir(dir);
  try {
    const relay = await startStoreRelay({ endpoint, dir, owner });
    const envFile = join(dir, "env");
    writeEnvFile(envFile, env, owner);
    const script = join(dir, "with-store");
    writeForwardScript(script, relay, envFile);
    // the sandbox's own synthetic /etc (Attest's directory): every later process of it sees the names
    writeStoreNames(join(sandboxDir, "etc"), endpoint, names);
    const close = async () => {
      await relay.close();
      rmSync(dir, { recursive: true, force: true });
    };
    return { relay, script, close, [Symbol.asyncDispose]: close };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
