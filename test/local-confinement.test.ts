/**
 * The local runtime's confinement, asked from inside a real sandbox: what its processes and its
 * server can reach of the host, the network, Attest's environment and each other.
 */

import { execFileSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConfined } from "../src/runtimes/local/confine.js";
import { LocalRuntime } from "../src/runtimes/local/local-runtime.js";
import type { LocalSandbox } from "../src/runtimes/local/local-sandbox.js";
import { sweepSandboxCgroups } from "../src/runtimes/local/sandbox-cgroup.js";
import { withClient } from "../src/runtimes/sql.js";
import { createLogger } from "../src/util/log.js";
import { lookupUser, processStartTime } from "../src/util/os-user.js";
import { readDecompressedHead } from "../src/wal/compression.js";

const SECRET = `attest-secret-${process.pid}-canary`;
// a short name: the sandbox's socket path under it must stay within a Unix socket's 107 bytes
// whatever the pids in it (they were 108 with two five-digit pids)
const work = mkdtempSync(join(tmpdir(), "cf-"));
// like the OS temp dir it stands for: the sandbox account must be able to reach its sandbox
chmodSync(work, 0o711);
const canary = join(tmpdir(), `attest-confine-canary-${process.pid}`);
let listener: Server;
let port = 0;
let connections = 0;
let runtime: LocalRuntime;
let sandbox: LocalSandbox;

/** Runs SQL in the sandbox's `postgres` database as Attest does. */
function sql<T = Record<string, unknown>>(text: string): Promise<T[]> {
  return withClient(sandbox, "postgres", async (c) => (await c.query(text)).rows as T[]);
}

/** Runs a shell line as the sandbox's server does with COPY … TO PROGRAM; returns its output. */
async function shellFromServer(line: string): Promise<string> {
  const out = join(sandbox.dataDir, `out-${Math.random().toString(36).slice(2)}`);
  // the COPY's row is read first: a program that exits before the server writes it makes the
  // COPY fail with a broken pipe
  const quoted = `cat >/dev/null; { ${line}; } > ${out} 2>&1`.replace(/'/g, "''");
  await sql(`copy (select 1) to program '${quoted}'`);
  return (await sql<{ t: string }>(`select pg_catalog.pg_read_file('${out.replace(/'/g, "''")}') as t`))[0]!
    .t;
}

beforeAll(async () => {
  process.env.ATTEST_TEST_SECRET = SECRET;
  listener = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((res) => listener.listen(0, "127.0.0.1", res));
  port = (listener.address() as { port: number }).port;
  runtime = new LocalRuntime({
    user: "attest-sandbox",
    workDir: work,
    logger: createLogger({ level: "error" }),
  });
  sandbox = (await runtime.provision({
    pgMajor: 15,
    allowNewer: true,
    labels: { run: `confine${process.pid}`, source: "t", backup: "b" },
    mode: "init",
    inputs: [],
  })) as LocalSandbox;
}, 120_000);

afterAll(async () => {
  await sandbox?.destroy();
  listener?.close();
  delete process.env.ATTEST_TEST_SECRET;
  rmSync(work, { recursive: true, force: true });
  rmSync(canary, { force: true });
});

describe("local sandbox confinement", () => {
  it("serves on a Unix socket in its own directory and on no TCP port", async () => {
    expect(sandbox.connection.host.startsWith(work)).toBe(true);
    expect(lstatSync(join(sandbox.connection.host, ".s.PGSQL.5432")).isSocket()).toBe(true);
    const [row] = await sql<{ l: string }>("select pg_catalog.current_setting('listen_addresses') as l");
    expect(row?.l).toBe("");
  });

  it("runs the server as the sandbox account, with no capabilities and no_new_privs", async () => {
    const status = await shellFromServer("id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status");
    const uid = lookupUser("attest-sandbox")!.uid;
    // inside its user namespace the account keeps its own uid
    expect(status.split("\n")[0]).toBe(String(uid));
    expect(status).toMatch(/CapEff:\s+0000000000000000/);
    expect(status).toMatch(/NoNewPrivs:\s+1/);
  });

  it("reaches no network: a loopback listener of the host gets no connection", async () => {
    const out = await shellFromServer(`bash -c 'echo x > /dev/tcp/127.0.0.1/${port}' || echo unreachable`);
    expect(out).toMatch(/refused|unreachable/i);
    expect(connections).toBe(0);
  });

  it("sees none of the host's files and writes none", async () => {
    const out = await shellFromServer(
      `ls /root /home /var/lib/postgresql /etc/shadow ${work}/.. 2>&1; cat /etc/passwd; touch ${canary}; ls /etc`,
    );
    expect(out).toMatch(/\/root.*No such file/);
    expect(out).toMatch(/\/etc\/shadow.*No such file/);
    // its /etc names only itself
    expect(out).not.toMatch(/^root:/m);
    expect(existsSync(canary)).toBe(false);
  });

  it("sees only its own processes and none of Attest's environment", async () => {
    const out = await shellFromServer(
      "ps -e -o comm= 2>/dev/null || ls /proc; env; cat /proc/1/environ | tr '\\0' '\\n'",
    );
    expect(out).not.toContain(SECRET);
    expect(out).not.toMatch(/\bnode\b|\bvitest\b|dockerd/);
  });

  it("cannot swap the socket or its directory for a link to another server", async () => {
    const out = await shellFromServer(
      `mv ${sandbox.connection.host} ${work}/moved; ln -sf /var/run/postgresql/.s.PGSQL.5432 ${sandbox.connection.host}/.s.PGSQL.5432; echo done`,
    );
    expect(out).toMatch(/Permission denied|Read-only/);
    const st = lstatSync(join(sandbox.connection.host, ".s.PGSQL.5432"));
    expect(st.isSocket()).toBe(true);
    expect(statSync(sandbox.connection.host).uid).toBe(0);
  });

  it("kills every process of the sandbox when it is destroyed, and leaves nothing", async () => {
    // a backend stuck in the backup's code for an hour: destroy must not wait for it, and the
    // query fails at once (the test's own timeout is far shorter than the sleep)
    const stuck = sql("select pg_catalog.pg_sleep(3600)").catch((err: unknown) => err);
    await sandbox.destroy();
    expect(await stuck).toBeInstanceOf(Error);
    expect(readdirSync(join(work, "attest-sandboxes"))).toEqual([]);
  });
});

describe("inputs the sandbox account cannot read", () => {
  it("are read through a private copy, the original left as it was", async () => {
    const dir = mkdtempSync(join(work, "backup-"));
    const file = join(dir, "secret.dump");
    writeFileSync(file, "payload", { mode: 0o600 });
    const before = statSync(file);
    const sb = (await runtime.provision({
      pgMajor: 15,
      allowNewer: true,
      labels: { run: `confine${process.pid}b`, source: "t", backup: "b" },
      mode: "empty",
      inputs: [{ hostPath: file }],
    })) as LocalSandbox;
    try {
      const inside = sb.inputPath(file);
      expect(inside).not.toBe(file);
      const r = await sb.exec("cat", [inside], { timeoutMs: 30_000 });
      expect(r.stdout).toBe("payload");
      expect(sb.notes.join(" ")).toMatch(/not readable by the sandbox account.*private copy/);
      const after = statSync(file);
      expect([after.mode, after.uid]).toEqual([before.mode, before.uid]);
    } finally {
      await sb.destroy();
    }
  });
});

describe("limits", () => {
  it("hold the sandbox as a whole to its memory, and keep /tmp off the host's memory", async () => {
    const small = new LocalRuntime({
      user: "attest-sandbox",
      workDir: work,
      logger: createLogger({ level: "error" }),
      memoryBytes: 256 * 1024 * 1024,
    });
    const sb = (await small.provision({
      pgMajor: 15,
      allowNewer: true,
      labels: { run: `confine${process.pid}m`, source: "t", backup: "b" },
      mode: "empty",
      inputs: [],
    })) as LocalSandbox;
    try {
      const where = await sb.exec("sh", ["-c", "df -P /tmp | tail -1"], { timeoutMs: 30_000 });
      expect(where.stdout).not.toMatch(/^tmpfs/m);
      // seen from the host: the sandbox's group, its limit, and the memory its processes used
      const v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");
      const groups = `/sys/fs/cgroup/${v2 ? "" : "memory/"}attest-sandboxes`;
      const group = `${groups}/${readdirSync(groups).find((n) => n.endsWith(`-${sb.id}`))}`;
      const limit = readFileSync(`${group}/${v2 ? "memory.max" : "memory.limit_in_bytes"}`, "utf8").trim();
      expect(limit).toBe(String(256 * 1024 * 1024));
      const used = readFileSync(`${group}/${v2 ? "memory.current" : "memory.max_usage_in_bytes"}`, "utf8");
      expect(Number(used)).toBeGreaterThan(0);
      // a 600 MB string: more than the sandbox may have; the kernel kills it (exit 137)
      const hog = await sb.exec(
        "sh",
        ["-c", `perl -e '$x = "a" x (600 * 1024 * 1024); print length $x'; echo " exit=$?"`],
        {
          timeoutMs: 120_000,
          allowFailure: true,
        },
      );
      expect(hog.stdout).toMatch(/exit=137/);
    } finally {
      await sb.destroy();
    }
    expect(
      readdirSync("/sys/fs/cgroup/memory/attest-sandboxes").filter((d) =>
        d.includes(`confine${process.pid}m`),
      ),
    ).toEqual([]);
  });
});

describe("confined readers of backup files on the host", () => {
  it("read a file only its owner may read (0600), as that owner, seeing nothing else", async () => {
    const dir = mkdtempSync(join(work, "wal-"));
    chmodSync(dir, 0o755);
    const plain = join(dir, "segment");
    writeFileSync(plain, "WAL-CONTENT-".repeat(1000));
    execFileSync("zstd", ["-q", "--rm", plain]);
    // a WAL archive as archive_command leaves it: the directory and its files the DBA account's
    const pg = lookupUser("postgres")!;
    chownSync(dir, pg.uid, pg.gid);
    chownSync(`${plain}.zst`, pg.uid, pg.gid);
    chmodSync(`${plain}.zst`, 0o600);
    const head = await readDecompressedHead(`${plain}.zst`, "zst", 24);
    expect(head.toString()).toBe("WAL-CONTENT-WAL-CONTENT-");
    const scratch = mkdtempSync(join(work, "scratch-"));
    const r = await runConfined(
      "/bin/sh",
      [
        "-c",
        'zstd -dc "$1" > "$2/out" && id -u && ls /root /home 2>&1; wc -c < "$2/out"',
        "sh",
        `${plain}.zst`,
        scratch,
      ],
      { readOnly: [dir], writable: [scratch], timeoutMs: 30_000 },
    );
    expect(r.stdout.split("\n")[0]).toBe(String(pg.uid));
    expect(r.stdout).toMatch(/No such file/);
    expect(r.stdout.trim().split("\n").pop()).toBe("12000");
  });
});

describe("a work directory too long for the sandbox's Unix socket", () => {
  it("is refused before anything is made, naming the setting and how long it may be", async () => {
    const deep = join(work, "d".repeat(60));
    mkdirSync(deep);
    const long = new LocalRuntime({
      user: "attest-sandbox",
      workDir: deep,
      logger: createLogger({ level: "error" }),
    });
    const err = await long
      .provision({
        pgMajor: 15,
        allowNewer: true,
        labels: { run: `long${process.pid}`, source: "t", backup: "b" },
        mode: "init",
        inputs: [],
      })
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    expect(err?.message).toMatch(
      /^the sandbox's socket path would be \d+ bytes, over the 107 a Unix socket allows: set sandbox\.local\.work_dir \(or TMPDIR\) to a directory of at most \d+ bytes/,
    );
    const room = Number(/at most (\d+) bytes/.exec(err!.message)![1]);
    expect(room).toBeLessThan(Buffer.byteLength(deep));
    // a work directory of exactly that length gives a socket path of exactly the limit
    const fits = join(
      "/".padEnd(room, "x"),
      "attest-sandboxes",
      `attest-long${process.pid}-1`,
      "sock",
      ".s.PGSQL.5432",
    );
    expect(Buffer.byteLength(fits)).toBe(107);
    // nothing made but the shared base directory
    expect(readdirSync(join(deep, "attest-sandboxes"))).toEqual([]);
  });
});

describe("barman recover's staging directories", () => {
  it("live as long as their sandbox's owner, however old, and go with it", async () => {
    const base = mkdtempSync(join(work, "sw-"));
    const rt = new LocalRuntime({
      user: "attest-sandbox",
      workDir: base,
      logger: createLogger({ level: "error" }),
    });
    const sandboxes = join(base, "attest-sandboxes");
    const gone = Number(execFileSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).trim());
    const make = (name: string, owner?: number) => {
      const d = join(sandboxes, name);
      mkdirSync(d, { recursive: true });
      if (owner)
        writeFileSync(
          join(d, "owner.json"),
          JSON.stringify({
            pid: owner,
            pidStart: processStartTime(owner),
            run: name,
            source: "s",
            backup: "b",
          }),
        );
      // two hours old: a directory without an owner of its own is swept after one
      const old = new Date(Date.now() - 2 * 3_600_000);
      utimesSync(d, old, old);
      return d;
    };
    make("attest-live-1", process.pid);
    make("attest-live-1-barman");
    make("attest-live-1-barman-tablespaces");
    make("attest-dead-1", gone);
    make("attest-dead-1-barman");
    make("attest-orphan-1-barman");
    const report = await rt.sweep();
    expect(readdirSync(sandboxes).sort()).toEqual([
      "attest-live-1",
      "attest-live-1-barman",
      "attest-live-1-barman-tablespaces",
    ]);
    expect(report.removed.map((r) => r.split(" ")[0]).sort()).toEqual([
      "attest-dead-1",
      "attest-dead-1-barman",
      "attest-orphan-1-barman",
    ]);
    rmSync(base, { recursive: true, force: true });
  });
});

describe("control groups of sandboxes", () => {
  it("are swept only when the Attest process that made them is gone, whatever its work directory", () => {
    const v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");
    const parent = `/sys/fs/cgroup/${v2 ? "" : "memory/"}attest-sandboxes`;
    mkdirSync(parent, { recursive: true });
    const gone = Number(execFileSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).trim());
    const stale = join(parent, `${gone}-1-attest-sweep${process.pid}-1`);
    const live = join(parent, `${process.pid}-${processStartTime(process.pid)}-attest-sweep${process.pid}-2`);
    mkdirSync(stale);
    mkdirSync(live);
    try {
      const removed = sweepSandboxCgroups();
      expect(removed).toContain(stale);
      expect(existsSync(stale)).toBe(false);
      expect(existsSync(live)).toBe(true); // another run's group, about to be joined
    } finally {
      for (const d of [stale, live]) if (existsSync(d)) rmdirSync(d);
    }
  });
});

describe("synthetic /etc directories", () => {
  it("are removed at exit, and those of a run killed before its exit are swept by the next", () => {
    const gone = Number(execFileSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).trim());
    const stale = mkdtempSync(join(tmpdir(), `attest-etc-${gone}-`));
    const ours = mkdtempSync(join(tmpdir(), `attest-etc-${process.pid}-`));
    const made = execFileSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        "const m = await import(process.argv[1]); console.log(m.etcDirFor(undefined));",
        join(import.meta.dirname, "..", "dist", "runtimes", "local", "confine.js"),
      ],
      { encoding: "utf8" },
    ).trim();
    try {
      expect(made).toMatch(/attest-etc-\d+-/);
      expect(existsSync(made)).toBe(false); // its own, removed when it exited
      expect(existsSync(stale)).toBe(false); // a gone process's, swept
      expect(existsSync(ours)).toBe(true); // a live process's, kept
    } finally {
      rmSync(stale, { recursive: true, force: true });
      rmSync(ours, { recursive: true, force: true });
    }
  });
});
