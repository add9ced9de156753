/**
 * The run lock: one run per history file. A second run is refused with the holder named
 * (exit 3) or waits; a lock whose process is gone is taken over, by exactly one contender.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  acquireRunLock,
  LockBusyError,
  type LockOwner,
  takeOverStaleLock,
} from "../src/scheduler/run-lock.js";
import { processStartTime } from "../src/util/os-user.js";
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
    setTimeout(() => held.release(), 400);
    const second = await acquireRunLock(lock, { runId: "second", kind: "audit" }, { waitMs: 10_000 });
    expect(second.owner.runId).toBe("second");
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

  it("never takes over a lock written on another host", async () => {
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
        await new Promise((r) => setTimeout(r, 1500));
        l.release();
      } catch (err) {
        process.stdout.write(err.name === "LockBusyError" ? "busy" : "error " + err.message);
      }`;
    for (let round = 0; round < 2; round++) {
      staleLock(lock);
      const at = String(Date.now() + 1500);
      const results = await Promise.all(
        Array.from(
          { length: 8 },
          () =>
            new Promise<string>((resolve) => {
              const p = spawn(process.execPath, ["--input-type=module", "-e", contender, at], {
                stdio: "pipe",
              });
              let out = "";
              p.stdout.on("data", (b: Buffer) => {
                out += b.toString();
              });
              p.on("close", () => resolve(out));
            }),
        ),
      );
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
      expect(r.stdout).toBe("");
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
    setTimeout(() => held.release(), 1500);
    const r = await attest(["audit", "--config", w.config, "--json", "--no-mail", "--wait", "2m"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/waiting up to 2m for the run lock/);
    expect(existsSync(w.lock)).toBe(false);
    const bad = await attest(["audit", "--config", w.config, "--wait", "soon"]);
    expect(bad.code).toBe(2);
  });

  it("takes over a stale lock left by a killed run", async () => {
    const w = ws();
    staleLock(w.lock);
    const r = await attest(["audit", "--config", w.config, "--json", "--no-mail"]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(w.lock)).toBe(false);
  });
});
