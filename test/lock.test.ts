/**
 * The run lock: one run per history file. A second run is refused with the holder named
 * (exit 3) or waits; a lock whose process is gone is taken over, by exactly one contender.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  acquireRunLock,
  LockBusyError,
  type LockOwner,
  takeOverStaleLock,
} from "../src/scheduler/run-lock.js";
import type { Logger } from "../src/util/log.js";
import { processAlive, processStartTime } from "../src/util/os-user.js";
import { type Clock, retryUntil, systemClock } from "../src/util/retry.js";
import { attest, DUMPS, ROOT, workspace } from "./support/cli.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const ws = () => {
  const w = workspace(
    (dir) =>
      `sources: [{ name: crm, type: dump-dir, path: ${DUMPS}/good, include: ["crm_*"] }]\n` +
      `history: { csv: ${dir}/reports/history.csv }\nreports: { dir: ${dir}/reports }\n`,
  );
  dirs.push(w.dir);
  mkdirSync(join(w.dir, "reports"));
  return { ...w, lock: join(w.dir, "reports", "history.csv.lock") };
};

/** A pid that surely belongs to no process now. */
function deadPid(): number {
  const out = execFileSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  return Number(out);
}

function staleLock(path: string, pid = deadPid()): LockOwner {
  const owner: LockOwner = {
    pid,
    pidStart: "1",
    host: hostname(),
    runId: "20260101t000000z-dead",
    kind: "audit",
    startedAt: "2026-01-01T00:00:00.000Z",
  };
  writeFileSync(path, JSON.stringify(owner));
  return owner;
}

/** A logger that keeps its warnings, to check what a takeover said. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (msg: string, fields?: Record<string, unknown>) => {
    lines.push(`${msg} ${JSON.stringify(fields ?? {})}`);
  };
  return {
    lines,
    log: (_l, m, f) => keep(m, f),
    info: keep,
    warn: keep,
    error: keep,
    debug: () => {},
    progress: () => {},
    done: () => {},
  };
}

/** A clock stopped at `at`; sleeping is real (only the lease arithmetic reads `now`). */
const clockAt = (at: number): Clock => ({ now: () => at, sleep: systemClock.sleep });

/** The first line a child writes on stdout. */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (b: Buffer) => {
      out += b.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.on("close", (code) => reject(new Error(`exited (${code}) before writing a line: ${out}`)));
  });
}

/** The state letter of a process in /proc/PID/stat. */
const procState = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
};

describe("run lock (in process)", () => {
  it("is exclusive, names its holder, and is released", async () => {
    const { lock } = ws();
    const held = await acquireRunLock(lock, { runId: "r1", kind: "audit" });
    expect(JSON.parse(readFileSync(lock, "utf8"))).toMatchObject({
      pid: process.pid,
      pidStart: processStartTime(process.pid),
      runId: "r1",
      kind: "audit",
    });
    const err = await acquireRunLock(lock, { runId: "r2", kind: "drill" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockBusyError);
    expect((err as Error).message).toBe(
      `another Attest run (pid ${process.pid}, run r1, started ${held.owner.startedAt}) holds ${lock}; retry later or pass --wait 10m`,
    );
    held.release();
    expect(existsSync(lock)).toBe(false);
    (await acquireRunLock(lock, { runId: "r3", kind: "audit" })).release();
    // no temp files or takeover guards are left next to it
    expect(readdirSync(join(lock, "..")).filter((n) => n.includes(".lock"))).toEqual([]);
  });

  it("waits for the holder to finish when asked to, and gives up after the wait", async () => {
    const { lock } = ws();
    const held = await acquireRunLock(lock, { runId: "first", kind: "audit" });
    // the holder finishes once the second run has found the lock held and started waiting
    const logger = recordingLogger();
    const waiting: Logger = {
      ...logger,
      info: (msg, fields) => {
        logger.info(msg, fields);
        if (msg.startsWith("waiting up to")) held.release();
      },
    };
    const second = await acquireRunLock(
      lock,
      { runId: "second", kind: "audit" },
      { waitMs: 10_000, logger: waiting },
    );
    expect(second.owner.runId).toBe("second");
    expect(logger.lines.join("\n")).toMatch(
      /waiting up to 10s for the run lock .*"holder":"pid \d+, run first/,
    );
    const late = await acquireRunLock(lock, { runId: "third", kind: "audit" }, { waitMs: 300 }).catch(
      (e: unknown) => e as Error,
    );
    expect((late as Error).message).toMatch(
      /still holds .* after 300ms; retry later or pass a longer --wait/,
    );
    second.release();
  });

  it("takes over a lock whose process is gone, or whose pid now belongs to another process", async () => {
    const { lock } = ws();
    staleLock(lock);
    const a = await acquireRunLock(lock, { runId: "after-dead", kind: "audit" });
    expect(a.owner.runId).toBe("after-dead");
    a.release();
    staleLock(lock, process.pid); // our pid, but another start time: a reused pid
    const b = await acquireRunLock(lock, { runId: "after-reuse", kind: "audit" });
    b.release();
  });

  it("does not take over a lock from another host while its lease runs", async () => {
    const { lock } = ws();
    writeFileSync(lock, JSON.stringify({ ...staleLock(lock), host: "elsewhere" }));
    const err = await acquireRunLock(lock, { runId: "x", kind: "audit" }).catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(
      /another Attest run \(pid \d+ on elsewhere, run 20260101t000000z-dead/,
    );
  });

  it("a contender that judged a lock stale a moment ago cannot remove the live lock that replaced it", async () => {
    const { lock } = ws();
    staleLock(lock);
    // B takes over first and holds the lock; A, which read the stale owner before, now acts on it
    const b = await acquireRunLock(lock, { runId: "b", kind: "audit" });
    expect(takeOverStaleLock(lock)).toBe(true);
    expect(JSON.parse(readFileSync(lock, "utf8"))).toMatchObject({ runId: "b" });
    // while another process holds the takeover guard, nobody removes anything
    b.release();
    staleLock(lock);
    writeFileSync(`${lock}.takeover`, "1\n");
    expect(takeOverStaleLock(lock)).toBe(true);
    expect(existsSync(lock)).toBe(true);
    rmSync(`${lock}.takeover`);
    expect(takeOverStaleLock(lock)).toBe(true);
    expect(existsSync(lock)).toBe(false);
  });

  it("takes over the lock of a holder killed on another host once its lease expired, and not before", async () => {
    const { lock } = ws();
    const mod = join(ROOT, "dist", "scheduler", "run-lock.js");
    const holder = `
      const { acquireRunLock } = await import(${JSON.stringify(mod)});
      await acquireRunLock(${JSON.stringify(lock)}, { runId: "pod-run", kind: "audit" }, { leaseMs: 3000, renewMs: 50 });
      process.stdout.write("held\\n");
      setInterval(() => {}, 60_000);`;
    // a new UTS namespace: the holder runs under another hostname, like a CronJob pod
    const child = spawn(
      "unshare",
      [
        "--uts",
        "sh",
        "-c",
        'hostname other-pod && exec "$0" --input-type=module -e "$1"',
        process.execPath,
        holder,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const closed = new Promise((r) => child.on("close", r));
    try {
      expect(await firstLine(child)).toBe("held");
      const owner = JSON.parse(readFileSync(lock, "utf8")) as LockOwner;
      expect(owner).toMatchObject({ host: "other-pod", runId: "pod-run", leaseMs: 3000 });
      // the holder renews its lease: the lock's mtime moves on while it lives
      const first = statSync(lock).mtimeMs;
      await retryUntil(async () => (statSync(lock).mtimeMs > first ? true : undefined), {
        timeoutMs: 10_000,
        intervalMs: 20,
        what: "a lease renewal",
      });
    } finally {
      child.kill("SIGKILL");
      await closed;
    }
    const renewed = statSync(lock).mtimeMs;
    const owner = JSON.parse(readFileSync(lock, "utf8")) as LockOwner;
    // just before the lease runs out the dead pod still holds the lock: its pid means nothing here
    const early = await acquireRunLock(
      lock,
      { runId: "next", kind: "audit" },
      { clock: clockAt(renewed + 2990) },
    ).catch((e: unknown) => e as Error);
    expect(early).toBeInstanceOf(LockBusyError);
    expect((early as Error).message).toMatch(
      new RegExp(
        `pid ${owner.pid} on other-pod, run pod-run, started .*, its lease runs out in 10ms unless renewed\\)`,
      ),
    );
    const logger = recordingLogger();
    const next = await acquireRunLock(
      lock,
      { runId: "next", kind: "audit" },
      { clock: clockAt(renewed + 3010), logger },
    );
    expect(next.owner.runId).toBe("next");
    expect(logger.lines.join("\n")).toMatch(
      new RegExp(
        `taking over a stale run lock: its lease of 3\\.0s expired .*"pid":${owner.pid},"host":"other-pod".*"leaseAge":"3\\.0s"`,
      ),
    );
    next.release();
  });

  it("tells a holder whose lock was taken over, and leaves the new owner's lock alone", async () => {
    const { lock } = ws();
    let lost: Error | undefined;
    const held = await acquireRunLock(
      lock,
      { runId: "paused", kind: "audit" },
      { leaseMs: 200, renewMs: 20, onLost: (err) => (lost = err) },
    );
    // another host took the lock over while this holder was stopped past its lease
    const theirs = `${lock}.theirs`;
    writeFileSync(theirs, JSON.stringify({ ...held.owner, host: "other-pod", runId: "pod-run" }));
    renameSync(theirs, lock);
    const err = await retryUntil(async () => lost, { timeoutMs: 10_000, intervalMs: 20, what: "onLost" });
    expect(err.message).toBe(`the run lock ${lock} was taken over by another run after our lease lapsed`);
    held.release();
    expect(JSON.parse(readFileSync(lock, "utf8"))).toMatchObject({ runId: "pod-run" });
    rmSync(lock);
  });

  it("takes over a lock whose owner is a zombie", async () => {
    const { lock } = ws();
    // the background `sleep 0` exits, and its parent (now `sleep`) never reaps it
    const parent = spawn("sh", ["-c", "sleep 0 & echo $!; exec sleep 600"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const closed = new Promise((r) => parent.on("close", r));
    try {
      const zombie = Number(await firstLine(parent));
      await retryUntil(async () => (procState(zombie) === "Z" ? true : undefined), {
        timeoutMs: 10_000,
        intervalMs: 20,
        what: "the child to become a zombie",
      });
      writeFileSync(
        lock,
        JSON.stringify({
          pid: zombie,
          pidStart: processStartTime(zombie),
          host: hostname(),
          runId: "zombie-run",
          kind: "audit",
          startedAt: new Date().toISOString(),
        } satisfies LockOwner),
      );
      // dead for every sweep that asks (sandboxes, containers, clones of a killed run), not only the lock
      expect(processAlive(zombie)).toBe(false);
      expect(processAlive(parent.pid!)).toBe(true);
      const logger = recordingLogger();
      const l = await acquireRunLock(lock, { runId: "after-zombie", kind: "audit" }, { logger });
      expect(l.owner.runId).toBe("after-zombie");
      expect(logger.lines.join("\n")).toMatch(/its process is a zombie .*"runId":"zombie-run"/);
      l.release();
    } finally {
      parent.kill("SIGKILL");
      await closed;
    }
  });

  it("lets exactly one of many simultaneous contenders take over a stale lock", async () => {
    const { lock } = ws();
    const mod = join(ROOT, "dist", "scheduler", "run-lock.js");
    // every contender starts at the same instant, after its slow start-up
    const contender = `
      const { acquireRunLock } = await import(${JSON.stringify(mod)});
      await new Promise((r) => setTimeout(r, Number(process.argv[1]) - Date.now() - 20));
      while (Date.now() < Number(process.argv[1]));
      try {
        const l = await acquireRunLock(${JSON.stringify(lock)}, { runId: "c" + process.pid, kind: "audit" });
        process.stdout.write("won");
        // held until every contender has answered (the test then closes stdin): one that
        // starts late on a loaded machine still finds it held, never released
        await new Promise((r) => { process.stdin.on("end", r); process.stdin.resume(); });
        l.release();
      } catch (err) {
        process.stdout.write(err.name === "LockBusyError" ? "busy" : "error " + err.message);
      }`;
    for (let round = 0; round < 2; round++) {
      staleLock(lock);
      const at = String(Date.now() + 1500);
      const contenders = Array.from({ length: 8 }, () => {
        const p = spawn(process.execPath, ["--input-type=module", "-e", contender, at], { stdio: "pipe" });
        let out = "";
        // what it says, once it said it (the winner goes on holding) or ended
        const answered = new Promise<string>((resolve) => {
          p.stdout.on("data", (b: Buffer) => {
            out += b.toString();
            resolve(out);
          });
          p.on("close", () => resolve(out));
        });
        const closed = new Promise<void>((resolve) => p.on("close", () => resolve()));
        return { p, answered, closed };
      });
      const results = await Promise.all(contenders.map((c) => c.answered));
      for (const c of contenders) c.p.stdin.end();
      await Promise.all(contenders.map((c) => c.closed));
      expect(
        results.filter((r) => r === "won"),
        results.join(","),
      ).toHaveLength(1);
      expect(results.filter((r) => r === "busy")).toHaveLength(7);
      expect(existsSync(lock)).toBe(false);
    }
  });
});

describe("run lock (CLI)", () => {
  it("refuses a second audit at once with the holder named and exit 3, and writes nothing", async () => {
    const w = ws();
    const held = await acquireRunLock(w.lock, { runId: "20261121t080000z-serv", kind: "audit" });
    try {
      const r = await attest(["audit", "--config", w.config, "--json", "--no-mail"]);
      expect(r.code).toBe(3);
      // --json: the one document of the invocation is the refusal
      expect(JSON.parse(r.stdout)).toEqual({
        status: "error",
        error: { code: "locked", message: r.stderr.trim().replace(/^attest: /, "") },
      });
      expect(r.stderr.trim()).toBe(
        `attest: another Attest run (pid ${process.pid}, run 20261121t080000z-serv, started ${held.owner.startedAt}) holds ${w.lock}; retry later or pass --wait 10m`,
      );
      expect(existsSync(join(w.dir, "reports", "history.csv"))).toBe(false);
      const d = await attest(["drill", "--config", w.config, "--source", "crm", "--no-mail"]);
      expect(d.code).toBe(3);
      expect(d.stderr).toMatch(/another Attest run \(pid \d+, run 20261121t080000z-serv/);
    } finally {
      held.release();
    }
  });

  it("waits with --wait, runs once the holder is done, and leaves no lock", async () => {
    const w = ws();
    const held = await acquireRunLock(w.lock, { runId: "busy", kind: "audit" });
    // the holder finishes once the CLI says it waits, not after a guessed while
    const r = await attest(["audit", "--config", w.config, "--json", "--no-mail", "--wait", "2m"], {
      onStderr: (text) => {
        if (/waiting up to 2m for the run lock/.test(text)) held.release();
      },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/waiting up to 2m for the run lock/);
    expect(existsSync(w.lock)).toBe(false);
    const bad = await attest(["audit", "--config", w.config, "--wait", "soon"]);
    expect(bad.code).toBe(2);
  });

  it("takes over a lock from another host whose lease expired, naming the stale owner", async () => {
    const w = ws();
    writeFileSync(w.lock, JSON.stringify({ ...staleLock(w.lock), host: "attest-weekly-audit-29xk1" }));
    const tenMinutesAgo = new Date(Date.now() - 600_000);
    utimesSync(w.lock, tenMinutesAgo, tenMinutesAgo);
    const r = await attest(["audit", "--config", w.config, "--json", "--no-mail"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/taking over a stale run lock: its lease of 2m expired/);
    expect(r.stderr).toMatch(/attest-weekly-audit-29xk1/);
    expect(existsSync(w.lock)).toBe(false);
  });

  it("takes over a stale lock left by a killed run", async () => {
    const w = ws();
    staleLock(w.lock);
    const r = await attest(["audit", "--config", w.config, "--json", "--no-mail"]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(w.lock)).toBe(false);
  });
});
