/**
 * The docker runtime against the real engine and the offline image attest/postgres:15
 * (docker/build-sandbox-image.sh): provisioning, exec with streamed stdin, read-only inputs,
 * containment (no network, no root, no capabilities, read-only root, no inherited secrets),
 * unreadable inputs, stop/start, kills, OOM, missing images, sweeping by label. Nothing here is
 * skipped: without an engine or the image the suite fails.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Socket } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDockerRuntime, type DockerRuntimeConfig } from "../src/runtimes/docker/docker-runtime.js";
import type { DockerSandbox } from "../src/runtimes/docker/docker-sandbox.js";
import type { ManagedRuntime } from "../src/runtimes/registry.js";
import type { SandboxSpec } from "../src/runtimes/runtime.js";
import { withClient } from "../src/runtimes/sql.js";
import { VerifierError } from "../src/util/errors.js";
import { createLogger } from "../src/util/log.js";
import { freeLoopbackPort } from "../src/util/net.js";
import { lookupUser } from "../src/util/os-user.js";
import { ProcessError } from "../src/util/process.js";

const IMAGE = "attest/postgres:{major}";
const RUN = `dockertest-${randomBytes(4).toString("hex")}`;
const quiet = createLogger({ sink: { write: () => {}, isTTY: false } });
const docker = new Docker();
const work = mkdtempSync(join(tmpdir(), "attest-docker-test-"));
chmodSync(work, 0o755); // the container's postgres user reads inputs as "other"

const config = (over: Partial<DockerRuntimeConfig> = {}): DockerRuntimeConfig => ({
  image: IMAGE,
  network: "none",
  tmpfs: false,
  pull: false,
  max_processes: 1024,
  ...over,
});
const spec = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({
  pgMajor: 15,
  allowNewer: true,
  labels: { run: RUN, source: "docker-test", backup: "b1" },
  mode: "init",
  inputs: [],
  ...over,
});

/** Containers carrying a run label (all states). */
function containersOf(run: string): string[] {
  const out = execFileSync(
    "docker",
    ["ps", "-a", "--filter", `label=attest.run=${run}`, "--format", "{{.Names}}"],
    {
      encoding: "utf8",
    },
  );
  return out.split("\n").filter(Boolean);
}

/** The error a promise rejects with; fails the test when it resolves. */
async function rejection<E extends Error = Error>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (err) {
    return err as E;
  }
  throw new Error("expected a rejection, got a result");
}

let runtime: ManagedRuntime;

beforeAll(async () => {
  // fail, never skip, when the engine or the image is missing
  await docker.ping().catch((err: Error) => {
    throw new Error(`the docker suite needs a Docker engine (${err.message}); run scripts/ensure-system.sh`);
  });
  await docker
    .getImage("attest/postgres:15")
    .inspect()
    .catch(() => {
      throw new Error("the docker suite needs attest/postgres:15: run bash docker/build-sandbox-image.sh");
    });
  runtime = await createDockerRuntime(config(), quiet);
});

/** Sandbox host directories this process made and left (their owner file names this pid). */
function myHostDirs(): string[] {
  return readdirSync(tmpdir())
    .filter((n) => n.startsWith("attest-docker-sandbox-"))
    .filter((n) => {
      try {
        return (
          JSON.parse(readFileSync(join(tmpdir(), n, "owner.json"), "utf8"))["attest.pid"] ===
          String(process.pid)
        );
      } catch {
        return false;
      }
    });
}

afterAll(async () => {
  await runtime?.destroyAll();
  rmSync(work, { recursive: true, force: true });
  expect(containersOf(RUN), "containers left by the docker suite").toEqual([]);
  expect(myHostDirs(), "sandbox directories left by the docker suite").toEqual([]);
});

describe("docker runtime", () => {
  it("lists the majors whose image is present", async () => {
    expect(await runtime.availableMajors()).toContain(15);
  });

  it("provisions a started cluster, streams stdin into psql, reads inputs read-only, and leaves nothing", async () => {
    const input = join(work, "input 2026-11-20T03:00.sql"); // a colon and a space, as backup names have
    writeFileSync(input, "select 'from the input file' as t;\n");
    const sb = (await runtime.provision(
      spec({ inputs: [{ hostPath: input }, { hostPath: work }] }),
    )) as DockerSandbox;
    try {
      expect(sb.runtime).toBe("docker");
      expect(sb.pgMajor).toBe(15);
      // the only way in: a Unix socket in the sandbox's host directory (private to Attest)
      expect(sb.connection.host).toBe(join(sb.hostDir, "sock"));
      expect(sb.connection.port).toBe(5432);
      expect(statSync(sb.hostDir).mode & 0o777).toBe(0o700);
      expect(
        await withClient(
          sb,
          "postgres",
          async (c) => (await c.query("select current_setting('listen_addresses') as la")).rows[0].la,
        ),
      ).toBe("");

      // many lines through a Node stream, with back-pressure, into psql -f -
      const lines = function* () {
        yield "create table t (id int, note text);\n";
        for (let i = 0; i < 20_000; i++) yield `insert into t values (${i}, '${"x".repeat(50)}');\n`;
      };
      const r = await sb.exec("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-f", "-"], {
        stdin: Readable.from(lines()),
        timeoutMs: 120_000,
      });
      expect(r.code).toBe(0);
      const count = await withClient(
        sb,
        "postgres",
        async (c) => (await c.query("select count(*)::int as n from public.t")).rows[0].n,
      );
      expect(count).toBe(20_000);

      // a stream that already flows (a byte counter listens) loses nothing while the exec is created
      const flowing = Readable.from(lines());
      let sent = 0;
      flowing.on("data", (b: string) => {
        sent += Buffer.byteLength(b);
      });
      const wc = await sb.exec("wc", ["-c"], { stdin: flowing, timeoutMs: 60_000 });
      expect(Number(wc.stdout.trim())).toBe(sent);
      expect(sent).toBeGreaterThan(1_000_000);

      const seen: string[] = [];
      await sb.exec("psql", ["-X", "-At", "-f", sb.inputPath(input)], {
        timeoutMs: 30_000,
        onStdoutLine: (l) => seen.push(l),
      });
      expect(seen).toEqual(["from the input file"]);
      expect(sb.inputPath(input)).toBe("/inputs/1/input 2026-11-20T03:00.sql");
      expect(sb.inputPath(join(work, ".", "input 2026-11-20T03:00.sql"))).toBe(sb.inputPath(input));
      expect(sb.inputPath(join(work, "x", "y"))).toBe(`${sb.inputPath(work)}/x/y`);

      // the backup location is mounted read-only
      const w = await sb.exec("sh", ["-c", `touch ${sb.inputPath(work)}/written 2>&1`], {
        timeoutMs: 10_000,
        allowFailure: true,
      });
      expect(w.code).not.toBe(0);
      expect(w.stdout).toMatch(/Read-only file system/);
      expect(existsSync(join(work, "written"))).toBe(false);

      // non-zero exits are ProcessErrors with the stderr tail, unless allowed
      const failed = await rejection(sb.exec("psql", ["-X", "-c", "select nope"], { timeoutMs: 10_000 }));
      expect(failed).toBeInstanceOf(ProcessError);
      expect(failed.message).toMatch(/psql exited with code 1: .*column "nope" does not exist/);
      const who = await sb.exec("id", ["-un"], { timeoutMs: 10_000 });
      expect(who.stdout.trim()).toBe("postgres");
      expect(await sb.isRunning()).toBe(true);
      expect(await sb.logTail(5)).not.toContain("FATAL:  could not");
    } finally {
      await sb.destroy();
      await sb.destroy(); // safe twice
    }
    expect(containersOf(RUN)).toEqual([]);
    expect(existsSync(sb.hostDir), "the sandbox's host directory is removed").toBe(false);
  });

  it("runs psql's \\! inside the container: the host is not touched", async () => {
    const probe = `/tmp/attest-docker-probe-${randomBytes(4).toString("hex")}`;
    await using sb = await runtime.provision(spec());
    const r = await sb.exec("psql", ["-X", "-q", "-d", "postgres", "-f", "-"], {
      stdin: `\\! touch ${probe}\n\\! echo "shell ran as $(id -un) on $(cat /etc/hostname 2>/dev/null || hostname)"\n`,
      timeoutMs: 30_000,
    });
    expect(r.stdout).toMatch(/shell ran as postgres/);
    expect(existsSync(probe), "the host file must not exist").toBe(false);
    const inside = await sb.exec("test", ["-f", probe], { timeoutMs: 10_000, allowFailure: true });
    expect(inside.code, "the shell escape ran in the container").toBe(0);
  });

  it("times out and aborts a running program, ending it inside the container", async () => {
    await using sb = await runtime.provision(spec());
    const t0 = Date.now();
    const err = await rejection<ProcessError>(
      sb.exec("psql", ["-X", "-c", "select pg_sleep(60)"], { timeoutMs: 1500 }),
    );
    expect(err).toBeInstanceOf(ProcessError);
    expect(err.message).toMatch(/psql timed out after 1500 ms/);
    expect(err.result?.timedOut).toBe(true);
    // killed at its timeout, not left to sleep its 60 s (a bound far from both, for a loaded engine)
    expect(Date.now() - t0).toBeLessThan(30_000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("operator pressed ctrl-c")), 800);
    const aborted = await rejection<ProcessError>(
      sb.exec("psql", ["-X", "-c", "select pg_sleep(60)"], { timeoutMs: 60_000, signal: ac.signal }),
    );
    expect(aborted.message).toMatch(/psql stopped: operator pressed ctrl-c/);
    // the signalled psql is gone from the container (its server session ends when the server notices)
    const left = await sb.exec("sh", ["-c", "cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^psql$'; exit 0"], {
      timeoutMs: 10_000,
    });
    expect(left.stdout.trim()).toBe("0");
  });

  it("an abort that arrives while the exec is still being created stops the program too", async () => {
    await using sb = await runtime.provision(spec());
    const ac = new AbortController();
    // the exec is requested from the engine first; the abort lands before it answers
    const running = sb.exec("sleep", ["29"], { timeoutMs: 60_000, signal: ac.signal });
    ac.abort(new Error("operator pressed ctrl-c"));
    const aborted = await rejection<ProcessError>(running);
    expect(aborted.message).toMatch(/sleep stopped: operator pressed ctrl-c/);
    // (the container's own main process is a `sleep infinity`)
    const left = await sb.exec(
      "sh",
      [
        "-c",
        "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' <$f; echo; done 2>/dev/null | grep -c '^sleep 29 $'; exit 0",
      ],
      { timeoutMs: 10_000 },
    );
    expect(left.stdout.trim()).toBe("0");
  });

  it("ends the whole sandbox when a program outlives its KILL because the sandbox rewrote the pid file Attest signals", async () => {
    const sb = (await runtime.provision(spec())) as DockerSandbox;
    try {
      const ac = new AbortController();
      // what the backup's code can do as the sandbox's user: point every pid file elsewhere, so
      // the TERM and the KILL go to a group that does not exist
      const running = sb.exec(
        "sh",
        ["-c", 'for f in /sandbox/run/*.pid; do echo 99999 >"$f"; done; echo rewritten >&2; exec sleep 300'],
        {
          timeoutMs: 600_000,
          signal: ac.signal,
          onStderrLine: (l) => {
            if (l === "rewritten") ac.abort(new Error("operator pressed ctrl-c"));
          },
        },
      );
      const aborted = await rejection<ProcessError>(running);
      expect(aborted.message).toMatch(/sh stopped: operator pressed ctrl-c/);
      // settled only because the container was killed: the sleep never got a signal (the
      // engine may report the container's end a moment after the exec's stream ends)
      const state = () =>
        execFileSync("docker", ["inspect", "-f", "{{.State.Running}}", sb.containerId], {
          encoding: "utf8",
        }).trim();
      for (let i = 0; i < 300 && state() === "true"; i++) await new Promise((r) => setTimeout(r, 100));
      expect(state()).toBe("false");
    } finally {
      await sb.destroy();
    }
    expect(containersOf(RUN)).toEqual([]);
  });

  it("drills an input only the host's postgres can read (0600/0700) through a private read-only copy", async () => {
    const owner = lookupUser("postgres");
    expect(owner, "the host has a postgres account (PostgreSQL is installed)").toBeDefined();
    const backup = mkdtempSync(join(tmpdir(), "attest-docker-private-"));
    try {
      mkdirSync(join(backup, "base"));
      writeFileSync(join(backup, "base", "PG_VERSION"), "15\n");
      writeFileSync(join(backup, "backup_label"), "START WAL LOCATION: 0/2000028\n");
      for (const [p, mode] of [
        [join(backup, "base", "PG_VERSION"), 0o600],
        [join(backup, "backup_label"), 0o600],
        [join(backup, "base"), 0o700],
        [backup, 0o700],
      ] as const) {
        chownSync(p, owner!.uid, owner!.gid);
        chmodSync(p, mode);
      }
      const before = statSync(join(backup, "backup_label"));
      await using sb = (await runtime.provision(
        spec({ mode: "empty", inputs: [{ hostPath: backup }] }),
      )) as DockerSandbox;
      const inside = sb.inputPath(join(backup, "base", "PG_VERSION"));
      expect(inside).toMatch(/^\/copies\/1\/attest-docker-private-[^/]+\/base\/PG_VERSION$/);
      const r = await sb.exec("cat", [inside, sb.inputPath(join(backup, "backup_label"))], {
        timeoutMs: 10_000,
      });
      expect(r.stdout).toBe("15\nSTART WAL LOCATION: 0/2000028\n");
      // the copy cannot be changed from inside; the original is untouched
      const w = await sb.exec("sh", ["-c", `rm -f ${inside} 2>&1`], {
        timeoutMs: 10_000,
        allowFailure: true,
      });
      expect(w.stdout).toMatch(/Read-only file system/);
      const after = statSync(join(backup, "backup_label"));
      expect([after.uid, after.mode & 0o777]).toEqual([before.uid, 0o600]);
      expect(statSync(backup).mode & 0o777).toBe(0o700);
      expect(sb.notes.join("\n")).toMatch(
        new RegExp(
          `^${backup} is not readable by the sandbox user postgres \\(uid \\d+\\): the drill read a private read-only copy`,
        ),
      );
    } finally {
      rmSync(backup, { recursive: true, force: true });
    }
  });

  it("holds the sandbox: no network, no root, no capabilities, read-only root, no inherited secrets", async () => {
    const canary = `attest-canary-${randomBytes(8).toString("hex")}`;
    process.env.ATTEST_TEST_CANARY_SECRET = canary;
    const connections: Socket[] = [];
    const listener = createServer((sock) => {
      connections.push(sock);
      sock.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
    const port = (listener.address() as { port: number }).port;
    try {
      await using sb = (await runtime.provision(spec())) as DockerSandbox;
      const info = await docker.getContainer(sb.containerId).inspect();
      expect(info.HostConfig.NetworkMode).toBe("none");
      expect(info.HostConfig.CapDrop).toEqual(["ALL"]);
      expect(info.HostConfig.CapAdd ?? []).toEqual([]);
      expect(info.HostConfig.SecurityOpt).toEqual(["no-new-privileges"]);
      expect(info.HostConfig.ReadonlyRootfs).toBe(true);
      expect(info.HostConfig.PidsLimit).toBe(1024);
      expect(info.HostConfig.Memory).toBeGreaterThan(0);
      expect(sb.notes).toEqual([]);
      expect(sb.confinement).toMatch(/network none, uid \d+ \(no root\), no capabilities/);

      // the restored server's own code (COPY ... TO PROGRAM) reaches no listener on the host's loopback
      const copy = await sb.exec(
        "psql",
        ["-X", "-c", `COPY (select 1) TO PROGRAM 'bash -c "echo > /dev/tcp/127.0.0.1/${port}"'`],
        { timeoutMs: 30_000, allowFailure: true },
      );
      expect(copy.code).not.toBe(0);
      expect(copy.stderrTail).toMatch(/program .* failed/);
      // the program's own stderr goes to the server's log
      expect(await sb.logTail(20)).toMatch(/Connection refused|Network is unreachable|No route to host/);
      // a tool run by exec has no way out either
      const direct = await sb.exec("bash", ["-c", `echo > /dev/tcp/127.0.0.1/${port}`], {
        timeoutMs: 10_000,
        allowFailure: true,
      });
      expect(direct.code).not.toBe(0);
      expect(connections, "connections that reached the host's listener").toHaveLength(0);

      // every process: an unprivileged uid, no capabilities at all, no way to gain any
      const status = await sb.exec(
        "sh",
        ["-c", "grep -E '^(Uid|CapEff|CapPrm|CapBnd|NoNewPrivs):' /proc/self/status"],
        {
          timeoutMs: 10_000,
        },
      );
      expect(status.stdout).toMatch(/^CapEff:\s+0{16}$/m);
      expect(status.stdout).toMatch(/^CapPrm:\s+0{16}$/m);
      expect(status.stdout).toMatch(/^CapBnd:\s+0{16}$/m);
      expect(status.stdout).toMatch(/^NoNewPrivs:\s+1$/m);
      const uids = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status.stdout);
      expect(Number(uids?.[1])).toBeGreaterThan(0);
      expect(Number(uids?.[2])).toBeGreaterThan(0);
      // the server itself (what a hostile function runs as)
      const server = await withClient(sb, "postgres", async (c) => {
        await c.query(
          `COPY (select 1) TO PROGRAM 'cat /proc/self/status > /tmp/server-status; env > /tmp/server-env'`,
        );
        return true;
      });
      expect(server).toBe(true);
      const seen = await sb.exec("cat", ["/tmp/server-status", "/tmp/server-env", "/proc/1/environ"], {
        timeoutMs: 10_000,
      });
      expect(seen.stdout).toMatch(/^CapEff:\s+0{16}$/m);
      expect(seen.stdout).not.toMatch(/^Uid:\s+0\s/m);

      // read-only root filesystem; /sandbox and /tmp writable
      const ro = await sb.exec("sh", ["-c", "touch /etc/attest-probe /usr/attest-probe 2>&1; exit 0"], {
        timeoutMs: 10_000,
      });
      expect(ro.stdout.match(/Read-only file system/g)).toHaveLength(2);
      const rw = await sb.exec("sh", ["-c", "touch /sandbox/probe /tmp/probe && echo ok"], {
        timeoutMs: 10_000,
      });
      expect(rw.stdout.trim()).toBe("ok");

      // nothing of Attest's environment: not in exec'd tools, the server, or the container's init
      const env = await sb.exec("env", [], { timeoutMs: 10_000 });
      for (const text of [env.stdout, seen.stdout]) {
        expect(text).not.toContain(canary);
        expect(text).not.toContain("ATTEST_TEST_CANARY_SECRET");
      }
      expect(info.Config.Env.join("\n")).not.toContain(canary);
    } finally {
      delete process.env.ATTEST_TEST_CANARY_SECRET;
      await new Promise((r) => listener.close(r));
    }
    expect(connections).toHaveLength(0);
  });

  it("cannot swap its socket or its log for a link to a host server or file", async () => {
    const secret = join(tmpdir(), `attest-docker-secret-${process.pid}`);
    writeFileSync(secret, "ATTEST-HOST-SECRET-docker", { mode: 0o600 });
    try {
      await using sb = (await runtime.provision(spec())) as DockerSandbox;
      const r = await sb.exec(
        "sh",
        [
          "-c",
          "rm -f /sandbox/sock/.s.PGSQL.5432; ln -s /var/run/postgresql/.s.PGSQL.5432 /sandbox/sock/x; mv /sandbox/sock /sandbox/moved; rm -f /sandbox/server.log; ln -s " +
            secret +
            " /sandbox/server.log; echo done",
        ],
        { timeoutMs: 30_000, allowFailure: true },
      );
      expect(r.stdout).toContain("done");
      // the socket directory is Attest's once the server runs, and a mount point the container cannot move
      expect(r.stderrTail).toMatch(/Permission denied|Device or resource busy/);
      expect(lstatSync(join(sb.connection.host, ".s.PGSQL.5432")).isSocket()).toBe(true);
      expect(statSync(sb.connection.host).uid).toBe(0);
      const rows = await withClient(sb, "postgres", async (c) => (await c.query("select 1 as one")).rows);
      expect(rows).toEqual([{ one: 1 }]);
      // a link in the log's place is not followed to the host file it names
      expect(await sb.logTail(5)).not.toContain("ATTEST-HOST-SECRET");
    } finally {
      rmSync(secret, { force: true });
    }
  });

  it("shares the host's network only when configured to, and says so in the drill's notes", async () => {
    const rt = await createDockerRuntime(config({ network: "host" }), quiet);
    await using sb = (await rt.provision(spec())) as DockerSandbox;
    expect((await docker.getContainer(sb.containerId).inspect()).HostConfig.NetworkMode).toBe("host");
    expect(sb.notes.join("\n")).toMatch(/^sandbox network: host \(sandbox\.docker\.network opt-in\)/);
    expect(sb.confinement).toMatch(/network host/);
    // still reached through its socket only
    expect(sb.connection.host).toBe(join(sb.hostDir, "sock"));
    expect(
      await withClient(
        sb,
        "postgres",
        async (c) => (await c.query("select current_setting('listen_addresses') as la")).rows[0].la,
      ),
    ).toBe("");
  });

  it("stops and starts the server again on an empty data directory (mode empty)", async () => {
    await using sb = await runtime.provision(spec({ mode: "empty" }));
    expect(await sb.isRunning()).toBe(false);
    await sb.exec("initdb", ["-D", sb.dataDir, "-U", "postgres", "--auth-host=trust", "--no-sync"], {
      timeoutMs: 120_000,
    });
    await sb.start({ timeoutMs: 60_000 });
    expect(await sb.isRunning()).toBe(true);
    await sb.stop({ timeoutMs: 30_000 });
    expect(await sb.isRunning()).toBe(false);
    await sb.start({ timeoutMs: 60_000, settings: { max_connections: "42" } });
    const mc = await withClient(
      sb,
      "postgres",
      async (c) => (await c.query("show max_connections")).rows[0].max_connections,
    );
    expect(mc).toBe("42");
    // a setting the server rejects: start fails fast with the server's own words
    await sb.stop({ timeoutMs: 30_000 });
    await expect(sb.start({ timeoutMs: 30_000, settings: { shared_buffers: "nonsense" } })).rejects.toThrow(
      /postgres exited with code \d+: .*shared_buffers/,
    );
  });

  it("ends what the backup's code started when the server stops, keeping the container alive", async () => {
    await using sb = await runtime.provision(spec());
    // a daemon left behind, as the restored server's code can start one (COPY … TO PROGRAM): every
    // program of the container shares its pid namespace, so it would outlive the server
    await sb.exec("sh", ["-c", "sleep 1234 </dev/null >/dev/null 2>&1 & exit 0"], { timeoutMs: 10_000 });
    const sleepers = async () =>
      (
        await sb.exec(
          "sh",
          [
            "-c",
            "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' <$f; echo; done 2>/dev/null | grep -c '^sleep 1234 $'; exit 0",
          ],
          { timeoutMs: 10_000 },
        )
      ).stdout.trim();
    expect(await sleepers()).toBe("1");
    await sb.stop({ timeoutMs: 30_000 });
    expect(await sleepers()).toBe("0");
    // the container lives on: the server starts again
    await sb.start({ timeoutMs: 60_000 });
    expect(await sb.isRunning()).toBe(true);
  });

  it("reports a container killed mid-restore as a verifier error and leaves nothing", async () => {
    const sb = (await runtime.provision(spec())) as DockerSandbox;
    const running = sb.exec("psql", ["-X", "-v", "ON_ERROR_STOP=1", "-f", "-"], {
      stdin: Readable.from(
        (function* () {
          yield "create table big as select g from generate_series(1, 1000) g;\n";
          yield "select pg_sleep(60);\n";
        })(),
      ),
      timeoutMs: 120_000,
    });
    // the event, not a guess: psql's backend is inside pg_sleep
    for (let i = 0; i < 600; i++) {
      const busy = await withClient(sb, "postgres", async (c) => {
        const r = await c.query(
          "select 1 from pg_catalog.pg_stat_activity where query like 'select pg_sleep(60)%' and state = 'active'",
        );
        return (r.rowCount ?? 0) > 0;
      });
      if (busy) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    execFileSync("docker", ["kill", sb.containerId]);
    const err = await rejection<Error>(running);
    expect(err).toBeInstanceOf(VerifierError);
    expect(err.message).toMatch(
      /^sandbox container was killed \(OOMKilled=false, exit code 137\) while psql ran$/,
    );
    expect(await sb.isRunning()).toBe(false);
    const next = await rejection<Error>(sb.exec("pg_amcheck", ["--all"], { timeoutMs: 10_000 }));
    expect(next.message).toMatch(
      /^sandbox container was killed \(OOMKilled=false, exit code 137\) while pg_amcheck ran$/,
    );
    await sb.destroy();
    expect(containersOf(RUN)).toEqual([]);
    const gone = await rejection<Error>(sb.exec("true", [], { timeoutMs: 10_000 }));
    expect(gone).toBeInstanceOf(VerifierError);
    expect(gone.message).toMatch(/^sandbox container attest-.* disappeared while true ran$/);
  });

  it("reports a program the OOM killer ended as a verifier error naming the memory limit", async () => {
    const small = await createDockerRuntime(config({ memory: "96m" }), quiet);
    await using sb = await small.provision(spec());
    const err = await rejection<Error>(
      sb.exec("sh", ["-c", "x=a; while :; do x=$x$x; done"], { timeoutMs: 120_000 }),
    );
    expect(err).toBeInstanceOf(VerifierError);
    expect(err.message).toMatch(
      /sandbox ran out of memory: .* while sh ran \(memory limit 96m; exit code 137\)/,
    );
  });

  it("runs with a tmpfs data directory and CPU limits", async () => {
    const rt = await createDockerRuntime(config({ tmpfs: true, cpus: 1 }), quiet);
    await using sb = (await rt.provision(spec())) as DockerSandbox;
    const mounts = await sb.exec("sh", ["-c", "grep ' /sandbox/data ' /proc/mounts"], { timeoutMs: 10_000 });
    expect(mounts.stdout).toMatch(/^tmpfs \/sandbox\/data tmpfs/);
    const info = await docker.getContainer(sb.containerId).inspect();
    expect(info.HostConfig.NanoCpus).toBe(1e9);
    expect(info.HostConfig.Init).toBe(true);
    expect(info.HostConfig.NetworkMode).toBe("none");
  });

  it("runs an image laid out like the official one (own entrypoint, VOLUME, no /sandbox), its VOLUME no volume but an empty read-only noexec tmpfs", async () => {
    const image = "attest/officiallike-test:15";
    const dockerfile = [
      "FROM attest/postgres:15",
      "USER root",
      "RUN rm -rf /sandbox && mkdir -p /var/lib/postgresql/data && chown postgres: /var/lib/postgresql/data",
      "ENV PG_MAJOR=15",
      "VOLUME /var/lib/postgresql/data",
      "WORKDIR /",
      'ENTRYPOINT ["docker-entrypoint.sh"]',
      'CMD ["postgres"]',
    ].join("\n");
    execFileSync("docker", ["build", "-q", "-t", image, "-"], {
      input: dockerfile,
      stdio: ["pipe", "ignore", "ignore"],
    });
    try {
      const rt = await createDockerRuntime(config({ image }), quiet);
      expect(await rt.availableMajors()).toEqual([15]);
      const sb = (await rt.provision(spec({ pgMajor: 14 }))) as DockerSandbox;
      // an anonymous volume would be writable and executable whatever else is noexec
      const volumes = (await docker.getContainer(sb.containerId).inspect()).Mounts.filter(
        (m) => m.Type === "volume",
      );
      expect(volumes).toEqual([]);
      const seen = await sb.exec("sh", ["-c", "grep ' /var/lib/postgresql/data ' /proc/self/mountinfo"], {
        timeoutMs: 10_000,
      });
      expect(seen.stdout).toMatch(/ \/var\/lib\/postgresql\/data ro,nosuid,nodev,noexec[, ].* tmpfs /);
      expect(
        await withClient(sb, "postgres", async (c) => (await c.query("select 1 as one")).rows[0].one),
      ).toBe(1);
      await sb.destroy();
    } finally {
      execFileSync("docker", ["image", "rm", "-f", image], { stdio: "ignore" });
    }
  });

  it("names a missing image, pulled or not", async () => {
    const noPull = await rejection<Error>(runtime.provision(spec({ pgMajor: 99 })));
    expect(noPull).toBeInstanceOf(VerifierError);
    expect(noPull.message).toMatch(/^image attest\/postgres:99 not present and sandbox.docker.pull is false/);
    // a physical restore needs exactly its major: 14 is not 15
    const exact = await rejection<Error>(runtime.provision(spec({ pgMajor: 14, allowNewer: false })));
    expect(exact.message).toMatch(/^image attest\/postgres:14 not present/);
    // a real pull that fails: the registry is a loopback port nothing listens on, so the engine
    // sends no traffic beyond this machine
    const registry = `127.0.0.1:${await freeLoopbackPort()}`;
    const pulling = await createDockerRuntime(
      config({ image: `${registry}/attest/postgres:{major}`, pull: true }),
      quiet,
    );
    const err = await rejection<Error>(pulling.provision(spec({ pgMajor: 99 })));
    expect(err).toBeInstanceOf(VerifierError);
    expect(err.message).toMatch(
      new RegExp(
        `^image ${registry}/attest/postgres:99 not present and could not be pulled: .*connection refused`,
      ),
    );
    expect(containersOf(RUN)).toEqual([]);
  });

  it("says where it looked when no engine answers", async () => {
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = "unix:///nonexistent/docker.sock";
    try {
      const rt = await createDockerRuntime(config(), quiet);
      const err = await rejection<Error>(rt.provision(spec()));
      expect(err).toBeInstanceOf(VerifierError);
      expect(err.message).toMatch(
        /^Docker engine not reachable at unix:\/\/\/nonexistent\/docker.sock; start it or use runtime: local/,
      );
      expect(await rt.sweep()).toEqual({ removed: [], kept: [] });
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
  });

  it("sweeps containers whose owner process is gone and keeps live ones", async () => {
    const dead = spawnSync("true").pid!; // a pid that has exited
    const make = async (pid: number, host: string) => {
      const c = await docker.createContainer({
        Image: "attest/postgres:15",
        Entrypoint: ["sleep", "infinity"],
        Labels: {
          "attest.run": RUN,
          "attest.source": "docker-test",
          "attest.backup": "leftover",
          "attest.started": new Date().toISOString(),
          "attest.pid": String(pid),
          "attest.host": host,
        },
        HostConfig: { NetworkMode: "none" },
      });
      await c.start();
      return (await c.inspect()).Name.replace(/^\//, "");
    };
    // host directories (socket, data, copies) of a crashed run, with and without their container
    const dirOf = (pid: number) => {
      const d = mkdtempSync(join(tmpdir(), "attest-docker-sandbox-"));
      writeFileSync(
        join(d, "owner.json"),
        JSON.stringify({ "attest.pid": String(pid), "attest.pid.start": "", "attest.host": hostname() }),
      );
      mkdirSync(join(d, "sandbox", "sock"), { recursive: true });
      return d;
    };
    const deadDir = dirOf(dead);
    const liveDir = dirOf(process.pid);
    const leftover = await make(dead, hostname());
    const foreign = await make(dead, "another-host"); // cannot tell: kept
    const mine = await make(process.pid, hostname());
    const report = await runtime.sweep();
    // a CLI run of a concurrent test file may sweep the dead owner's container a moment earlier
    const line = `${leftover} (run ${RUN}, docker-test/leftover)`;
    if (!report.removed.includes(line)) console.warn(`${leftover} was swept by a concurrent run`);
    expect(report.kept).not.toContain(leftover);
    expect(report.kept).toEqual(expect.arrayContaining([foreign, mine]));
    expect(containersOf(RUN).sort()).toEqual([foreign, mine].sort());
    expect(existsSync(deadDir), "a dead run's sandbox directory is swept").toBe(false);
    expect(existsSync(liveDir), "a live run's sandbox directory is kept").toBe(true);
    rmSync(liveDir, { recursive: true, force: true });
    for (const name of [foreign, mine]) await docker.getContainer(name).remove({ force: true, v: true });
  });

  it("starts a sandbox in a few seconds (container create → accepting connections)", async () => {
    const totals: number[] = [];
    for (let i = 0; i < 3; i++) {
      const sb = (await runtime.provision(spec())) as DockerSandbox;
      const t0 = performance.now();
      await sb.destroy();
      const teardown = Math.round(performance.now() - t0);
      totals.push(sb.startup!.totalMs);
      console.log(
        `docker sandbox start #${i + 1}: ${JSON.stringify({ ...sb.startup, teardownMs: teardown })}`,
      );
    }
    for (const t of totals) expect(t).toBeLessThan(30_000);
  });
});
