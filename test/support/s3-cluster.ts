/**
 * A real S3 server for the tests: a single-node Ceph cluster (one monitor, one memstore OSD, one
 * RADOS Gateway) on loopback, in its own directory, started and stopped by pid.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { coerceError } from "../../src/util/errors.js";
import { freeLoopbackPort } from "../../src/util/net.js";
import { retryUntil } from "../../src/util/retry.js";

/** Every cluster directory starts with this, so a crashed run's leftovers can be found. */
export const S3_DIR_PREFIX = "attest-s3cluster-";

/** A pair of S3 keys. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** What a started cluster offers the tests (written to `<dir>/cluster.json`). */
export interface S3ClusterInfo {
  dir: string;
  httpEndpoint: string;
  httpsEndpoint: string;
  /** The CA that signed radosgw's certificate (SAN DNS:127.0.0.1, IP:127.0.0.1, DNS:localhost). */
  caFile: string;
  region: string;
  /** Owns the test buckets: writes backups with real tools. */
  writer: S3Credentials;
  /** Attest's account: may only list and read, and only where a bucket policy grants it. */
  reader: S3Credentials & { user: string; arn: string };
  /** Milliseconds from nothing to "S3 answers and the pools exist". */
  startedInMs: number;
}

const DAEMONS = ["rgw", "osd", "mon"] as const; // stop order: gateway, then storage, then monitor
type Daemon = (typeof DAEMONS)[number];

/** Runs a command to completion; the error carries its stderr tail. */
function run(cmd: string, args: string[], opts: { timeoutMs?: number; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 60_000, cwd: opts.cwd, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`${cmd} ${args.join(" ")} failed: ${stderr.trim().slice(-1500)}`, { cause: err }));
        } else {
          resolve(stdout);
        }
      },
    );
  });
}

/** True when `pid` is a live process (a zombie waiting to be reaped counts as gone). */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

function confText(dir: string, fsid: string, ports: { mon: number; http: number; https: number }): string {
  const tls = join(dir, "tls");
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${ports.mon}
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = ${dir}/keyring
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 1
[mon]
mon data = ${dir}/mon/$cluster-$id
# radosgw creates its pools one by one; each waits for a paxos round (default 1 s)
paxos propose interval = 0.05
[osd]
osd data = ${dir}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = 4294967296
# memstore keeps its data only through a clean shutdown
osd fast shutdown = false
[client.rgw]
# tcp_nodelay: without it every small GET waits ~40 ms for Nagle's algorithm
rgw frontends = beast endpoint=127.0.0.1:${ports.http} ssl_endpoint=127.0.0.1:${ports.https} ssl_certificate=${tls}/server.crt ssl_private_key=${tls}/server.key tcp_nodelay=1
rgw thread pool size = 64
rgw dns name = localhost
# deleted test data is freed within seconds, not hours (the OSD holds it in RAM)
rgw gc obj min wait = 1
rgw gc processor period = 5
rgw gc processor max time = 5
`;
}

async function makeCertificates(tls: string): Promise<void> {
  mkdirSync(tls, { recursive: true });
  const o = (args: string[]) => run("openssl", args, { cwd: tls });
  await o(
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt"].concat([
      "-days",
      "3",
      "-subj",
      "/CN=attest test S3 CA",
    ]),
  );
  await o(
    ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr"].concat([
      "-subj",
      "/CN=127.0.0.1",
    ]),
  );
  // pgBackRest 2.45 checks the name against a DNS entry only, so 127.0.0.1 is there as both
  writeFileSync(
    join(tls, "server.ext"),
    "subjectAltName=DNS:127.0.0.1,IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  await o(
    ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"].concat([
      "-out",
      "server.crt",
      "-days",
      "3",
      "-extfile",
      "server.ext",
    ]),
  );
  // the CA certificate is read by confined tools running as other accounts
  chmodSync(join(tls, "ca.crt"), 0o644);
}

async function makeKeyrings(dir: string): Promise<void> {
  const a = (args: string[]) => run("ceph-authtool", args, { cwd: dir });
  await a(["--create-keyring", "mon.keyring", "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"]);
  await a(
    ["--create-keyring", "keyring", "--gen-key", "-n", "client.admin"].concat([
      "--cap",
      "mon",
      "allow *",
      "--cap",
      "osd",
      "allow *",
      "--cap",
      "mgr",
      "allow *",
    ]),
  );
  await a(
    ["keyring", "--gen-key", "-n", "osd.0"].concat([
      "--cap",
      "mon",
      "allow profile osd",
      "--cap",
      "mgr",
      "allow profile osd",
      "--cap",
      "osd",
      "allow *",
    ]),
  );
  await a([
    "keyring",
    "--gen-key",
    "-n",
    "client.rgw",
    "--cap",
    "mon",
    "allow rw",
    "--cap",
    "osd",
    "allow rwx",
  ]);
  await a(["mon.keyring", "--import-keyring", "keyring"]);
}

/** Starts one daemon in the foreground of its own process group; its pid goes to `<dir>/pids/`. */
function startDaemon(dir: string, name: Daemon, cmd: string, args: string[]): number {
  const out = openSync(join(dir, "log", `${name}.out`), "a");
  // detached: the daemons outlive the test worker that started them; the run's teardown stops them
  const child = spawn(cmd, args, { detached: true, stdio: ["ignore", out, out] });
  child.unref();
  if (!child.pid) throw new Error(`${cmd} did not start`);
  writeFileSync(join(dir, "pids", `${name}.pid`), String(child.pid));
  return child.pid;
}

function logTails(dir: string): string {
  const logs = join(dir, "log");
  if (!existsSync(logs)) return "(no logs)";
  return readdirSync(logs)
    .map((f) => {
      const lines = readFileSync(join(logs, f), "utf8").trimEnd().split("\n").slice(-12);
      return `--- ${f}\n${lines.join("\n")}`;
    })
    .join("\n");
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

function key(n: number): string {
  return randomBytes(n).toString("hex").toUpperCase().slice(0, n);
}

/**
 * Starts a cluster in `dir` (which must exist and be empty) and resolves when radosgw answers S3
 * requests, both users exist and `warmUp` ran. On failure the daemons are stopped and the error carries the
 * tail of every Ceph log.
 */
export async function startS3Cluster(
  dir: string,
  opts: { timeoutMs?: number; warmUp?: (info: S3ClusterInfo) => Promise<void> } = {},
): Promise<S3ClusterInfo> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const missing = [
    "ceph-mon",
    "ceph-osd",
    "radosgw",
    "radosgw-admin",
    "ceph-authtool",
    "monmaptool",
    "ceph",
  ].filter((cmd) => !["/usr/bin", "/usr/sbin", "/bin"].some((d) => existsSync(join(d, cmd))));
  if (missing.length > 0)
    throw new Error(
      `the test S3 server needs ${missing.join(", ")}: run scripts/ensure-s3.sh (npm test does)`,
    );
  const t0 = Date.now();
  for (const d of ["run", "log", "pids", "mon", "osd/ceph-0"]) mkdirSync(join(dir, d), { recursive: true });
  chmodSync(dir, 0o755);
  try {
    const ports = {
      mon: await freeLoopbackPort(),
      http: await freeLoopbackPort(),
      https: await freeLoopbackPort(),
    };
    const fsid = randomUUID();
    const conf = join(dir, "ceph.conf");
    writeFileSync(conf, confText(dir, fsid, ports));
    await makeCertificates(join(dir, "tls"));
    await makeKeyrings(dir);
    await run(
      "monmaptool",
      ["--create", "--addv", "a", `[v2:127.0.0.1:${ports.mon}]`, "--fsid", fsid, "monmap"],
      {
        cwd: dir,
      },
    );
    await run(
      "ceph-mon",
      ["-c", conf, "--mkfs", "-i", "a", "--monmap", "monmap", "--keyring", "mon.keyring"],
      {
        cwd: dir,
      },
    );
    startDaemon(dir, "mon", "ceph-mon", ["-c", conf, "-i", "a", "-f"]);
    const osdUuid = randomUUID();
    await run("ceph", ["-c", conf, "--connect-timeout", "30", "osd", "new", osdUuid, "0", "-i", "/dev/null"]);
    await run("ceph-osd", ["-c", conf, "-i", "0", "--mkfs", "--osd-uuid", osdUuid]);
    startDaemon(dir, "osd", "ceph-osd", ["-c", conf, "-i", "0", "-f"]);
    startDaemon(dir, "rgw", "radosgw", ["-c", conf, "-n", "client.rgw", "-f"]);
    const httpEndpoint = `http://127.0.0.1:${ports.http}`;
    await retryUntil(
      async () => {
        for (const d of DAEMONS) {
          const pid = Number(readFileSync(join(dir, "pids", `${d}.pid`), "utf8"));
          if (!processAlive(pid)) throw new Error(`ceph ${d} (pid ${pid}) exited`);
        }
        return (await httpStatus(`${httpEndpoint}/`)) === 200 ? true : undefined;
      },
      { timeoutMs, intervalMs: 100, maxIntervalMs: 500, what: "radosgw to answer S3 requests" },
    );
    const writer = { accessKeyId: `W${key(19)}`, secretAccessKey: key(40) };
    const reader = { accessKeyId: `R${key(19)}`, secretAccessKey: key(40), user: "attest-reader" };
    const admin = (args: string[]) => run("radosgw-admin", ["-c", conf, "-n", "client.admin", ...args]);
    await admin(
      ["user", "create", "--uid=attest-writer", "--display-name=test writer"].concat([
        `--access-key=${writer.accessKeyId}`,
        `--secret-key=${writer.secretAccessKey}`,
      ]),
    );
    // read operations only, no bucket of its own; it reads a bucket only where the bucket's
    // policy grants it (as an IAM policy would on AWS)
    await admin(
      ["user", "create", `--uid=${reader.user}`, "--display-name=attest read-only"].concat(
        [`--access-key=${reader.accessKeyId}`, `--secret-key=${reader.secretAccessKey}`],
        ["--op-mask=read", "--max-buckets=-1"],
      ),
    );
    const info: S3ClusterInfo = {
      dir,
      httpEndpoint,
      httpsEndpoint: `https://127.0.0.1:${ports.https}`,
      caFile: join(dir, "tls", "ca.crt"),
      region: "us-east-1",
      writer,
      reader: { ...reader, arn: `arn:aws:iam:::user/${reader.user}` },
      startedInMs: 0,
    };
    await opts.warmUp?.(info);
    info.startedInMs = Date.now() - t0;
    // written whole, then renamed: a worker waiting for it never reads half a file
    writeFileSync(join(dir, "cluster.json.tmp"), JSON.stringify(info, null, 2));
    renameSync(join(dir, "cluster.json.tmp"), join(dir, "cluster.json"));
    return info;
  } catch (err) {
    const tails = logTails(dir);
    await stopS3Cluster(dir, { remove: false }).catch(() => undefined);
    throw new Error(
      `the test S3 server (Ceph radosgw in ${dir}) did not come up: ${coerceError(err).message}\n${tails}`,
      {
        cause: err,
      },
    );
  }
}

async function stopPid(pid: number, dir: string, graceMs: number): Promise<void> {
  // a pid that was reused by another program is left alone
  if (!processAlive(pid) || !cmdlineOf(pid).includes(dir)) return;
  process.kill(pid, "SIGTERM");
  try {
    await retryUntil(async () => (processAlive(pid) ? undefined : true), {
      timeoutMs: graceMs,
      intervalMs: 50,
      maxIntervalMs: 250,
      what: `pid ${pid} to stop`,
    });
  } catch {
    // the data dies with the directory anyway; a stuck daemon must not outlive the run
    if (processAlive(pid)) process.kill(pid, "SIGKILL");
  }
}

/** Stops the daemons of the cluster in `dir` by pid (SIGTERM, wait) and removes the directory. */
export async function stopS3Cluster(
  dir: string,
  opts: { remove?: boolean; graceMs?: number } = {},
): Promise<void> {
  const pids = join(dir, "pids");
  const pidOf = (d: Daemon): number | undefined => {
    const f = join(pids, `${d}.pid`);
    return existsSync(f) ? Number(readFileSync(f, "utf8")) : undefined;
  };
  const graceMs = opts.graceMs ?? 30_000;
  // in order: radosgw hangs in its shutdown when the OSD is already gone
  for (const d of DAEMONS) {
    const pid = pidOf(d);
    if (pid) await stopPid(pid, dir, graceMs);
  }
  if (opts.remove !== false) rmSync(dir, { recursive: true, force: true });
}

function ownerGone(dir: string): boolean {
  const ownerFile = join(dir, "owner.pid");
  if (!existsSync(dir)) return true;
  // a directory without owner.pid is not (or not yet) a run's: leave it alone
  return existsSync(ownerFile) && !processAlive(Number(readFileSync(ownerFile, "utf8")));
}

/**
 * Stops the Ceph daemons of test runs that are gone (found by their `-c …/attest-s3cluster-…/ceph.conf`
 * argument, even when another sweep already removed their directory) and removes those runs'
 * cluster directories under the temp dir.
 */
export async function sweepS3Leftovers(): Promise<string[]> {
  const swept = new Set<string>();
  const orphans: Array<{ pid: number; dir: string; order: number }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const m = /^(radosgw|ceph-osd|ceph-mon) -c (\S*\/attest-s3cluster-[^/\s]+)\/ceph\.conf /.exec(
      cmdlineOf(Number(entry)),
    );
    if (!m || !ownerGone(m[2]!)) continue;
    orphans.push({
      pid: Number(entry),
      dir: m[2]!,
      order: ["radosgw", "ceph-osd", "ceph-mon"].indexOf(m[1]!),
    });
  }
  orphans.sort((a, b) => a.order - b.order);
  for (const o of orphans) {
    await stopPid(o.pid, o.dir, 10_000);
    swept.add(o.dir);
  }
  for (const name of readdirSync(tmpdir())) {
    const dir = join(tmpdir(), name);
    if (name.startsWith(S3_DIR_PREFIX) && existsSync(join(dir, "owner.pid")) && ownerGone(dir))
      swept.add(dir);
  }
  for (const dir of swept) rmSync(dir, { recursive: true, force: true });
  return [...swept];
}
