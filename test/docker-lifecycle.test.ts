/**
 * The container cases of the lifecycle suite, through the real CLI with `runtime: docker`:
 * SIGTERM and SIGKILL mid-drill, the sweep of the next run, a missing engine, a backup only the
 * host's postgres account can read. Never skipped.
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import { mountPointsUnder } from "../src/runtimes/noexec-mounts.js";
import { isRoot, lookupUser } from "../src/util/os-user.js";
import { attest, DUMPS, workspace } from "./support/cli.js";
import { leftovers, sandboxYaml } from "./support/runtimes.js";

const dirs: string[] = [];
const runs: string[] = [];
afterAll(() => {
  for (const id of runs) expect(leftovers("docker", id), `containers of run ${id}`).toEqual([]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const ws = (body: string) => {
  const w = workspace(
    (dir) =>
      `${sandboxYaml("docker")}\n${body}\nhistory: { csv: ${dir}/reports/history.csv }\nreports: { dir: ${dir}/reports }\n`,
  );
  dirs.push(w.dir);
  return w;
};
const good = `sources: [{ name: good, type: dump-dir, path: ${DUMPS}/good, select: all }]`;
const crm = `sources: [{ name: crm, type: dump-dir, path: ${DUMPS}/good, include: ["crm_*"] }]`;

/** Containers (any state) made by process `pid`. */
function containersOfPid(pid: number): string[] {
  const out = execFileSync(
    "docker",
    ["ps", "-a", "--filter", `label=attest.pid=${pid}`, "--format", "{{.Names}}"],
    {
      encoding: "utf8",
    },
  );
  return out.split("\n").filter(Boolean);
}

/** Sandbox host directories (socket, data, copies) made by process `pid`. */
function hostDirsOfPid(pid: number): string[] {
  return readdirSync(tmpdir())
    .filter((n) => n.startsWith("attest-docker-sandbox-"))
    .filter((n) => {
      try {
        return (
          JSON.parse(readFileSync(join(tmpdir(), n, "owner.json"), "utf8"))["attest.pid"] === String(pid)
        );
      } catch {
        return false;
      }
    });
}

async function waitFor(what: string, fn: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > ms) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("docker runtime through the CLI", () => {
  it("stops on SIGTERM mid-drill: container removed, exit 3", async () => {
    const w = ws(good);
    let pid = 0;
    const running = attest(["audit", "--config", w.config, "--json", "--no-mail"], {
      onSpawn: (p) => (pid = p),
    });
    await waitFor("a container of this run", () => containersOfPid(pid).length > 0);
    process.kill(pid, "SIGTERM");
    const r = await running;
    expect(r.code).toBe(3);
    const doc = JSON.parse(r.stdout) as RunResult;
    runs.push(doc.run.id);
    expect(doc.status).toBe("error");
    expect(doc.drills.some((d) => /aborted during .*received SIGTERM/.test(d.reason))).toBe(true);
    expect(containersOfPid(pid)).toEqual([]);
    expect(hostDirsOfPid(pid)).toEqual([]);
  });

  it("after a SIGKILL the next run sweeps the leftover container", async () => {
    let pid = 0;
    const running = attest(["audit", "--config", ws(good).config, "--no-mail"], {
      onSpawn: (p) => (pid = p),
    });
    // killed as soon as its container exists: whatever phase that is, the container outlives the CLI
    await waitFor("a container of this run", () => containersOfPid(pid).length > 0);
    // what it leaves is taken stock of before the kill (its directory and mounts are made before
    // its container): once it is dead, any concurrent test file's run may sweep them at once
    const leftover = containersOfPid(pid);
    expect(hostDirsOfPid(pid).length, "the killed run's sandbox directory").toBeGreaterThan(0);
    // as root its directory is bind-mounted noexec on the host: the sweep must unmount it too
    const killed = hostDirsOfPid(pid).map((n) => join(tmpdir(), n));
    if (isRoot()) expect(killed.flatMap((d) => mountPointsUnder(d)).length).toBeGreaterThan(0);
    process.kill(pid, "SIGKILL");
    await running;
    expect(leftover.length).toBeGreaterThan(0);
    const next = await attest(["audit", "--config", ws(crm).config, "--json", "--no-mail"]);
    expect(next.code, next.stderr.slice(-2000)).toBe(0);
    runs.push((JSON.parse(next.stdout) as RunResult).run.id);
    // another test file's run may sweep the leftover first (any run sweeps dead owners' containers);
    // either way it is gone once the next run has started, and no run kept it
    expect(next.stderr).not.toMatch(/could not remove leftover/);
    if (!next.stderr.includes(leftover[0]!)) console.warn("leftover was swept by a concurrent run");
    expect(containersOfPid(pid)).toEqual([]);
    expect(hostDirsOfPid(pid), "the killed run's sandbox directory is swept").toEqual([]);
    expect(
      killed.flatMap((d) => mountPointsUnder(d)),
      "its noexec mounts are gone",
    ).toEqual([]);
  });

  it("is `error` (exit 3) naming the address when no Docker engine answers", async () => {
    const r = await attest(["audit", "--config", ws(crm).config, "--json", "--no-mail"], {
      env: { DOCKER_HOST: "unix:///nonexistent/docker.sock" },
    });
    expect(r.code).toBe(3);
    const doc = JSON.parse(r.stdout) as RunResult;
    expect(doc.status).toBe("error");
    expect(doc.drills).toHaveLength(1);
    expect(doc.drills[0]!.verdict).toBe("error");
    expect(doc.drills[0]!.reason).toMatch(
      /^provision: Docker engine not reachable at unix:\/\/\/nonexistent\/docker.sock; start it or use runtime: local/,
    );
  });

  it("drills a dump only the host's postgres can read (0600 in a 0700 directory), from a private copy", async () => {
    const owner = lookupUser("postgres")!;
    expect(owner, "the host has a postgres account").toBeDefined();
    const cfg = workspace(
      (dir) =>
        `${sandboxYaml("docker")}\nsources: [{ name: crm, type: dump-dir, path: ${dir}/pg-only }]\nhistory: { csv: ${dir}/reports/history.csv }\nreports: { dir: ${dir}/reports }\n`,
    );
    dirs.push(cfg.dir);
    const dumps = join(cfg.dir, "pg-only");
    mkdirSync(dumps);
    const dump = join(dumps, "crm_20261120T0300.dump");
    copyFileSync(join(DUMPS, "good", "crm_20261120T0300.dump"), dump);
    for (const [p, mode] of [
      [dump, 0o600],
      [dumps, 0o700],
    ] as const) {
      chownSync(p, owner.uid, owner.gid);
      chmodSync(p, mode);
    }
    const r = await attest(["drill", "--config", cfg.config, "--source", "crm", "--json", "--no-mail"]);
    const doc = JSON.parse(r.stdout) as RunResult;
    runs.push(doc.run.id);
    const d = doc.drills[0]!;
    expect(d.reason).not.toMatch(/not readable/);
    expect(["pass", "warn"]).toContain(d.verdict);
    expect(d.notes.join("\n")).toMatch(
      /pg-only.* is not readable by the sandbox user postgres \(uid \d+\).*: the drill read a private read-only copy/,
    );
    // the user's backup is as it was
    expect([statSync(dump).uid, statSync(dump).mode & 0o777]).toEqual([owner.uid, 0o600]);
    expect(statSync(dumps).mode & 0o777).toBe(0o700);
  });
});
