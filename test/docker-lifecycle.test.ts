/**
 * The container cases of the lifecycle suite, through the real CLI with `runtime: docker`:
 * SIGTERM and SIGKILL mid-drill, the sweep of the next run, a missing engine. Never skipped.
 */
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
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
  });

  it("after a SIGKILL the next run sweeps the leftover container", async () => {
    let pid = 0;
    const running = attest(["audit", "--config", ws(good).config, "--no-mail"], {
      onSpawn: (p) => (pid = p),
    });
    await waitFor("a container of this run", () => containersOfPid(pid).length > 0);
    await new Promise((r) => setTimeout(r, 1000)); // mid-provision or mid-restore
    process.kill(pid, "SIGKILL");
    await running;
    const leftover = containersOfPid(pid);
    expect(leftover.length).toBeGreaterThan(0);
    const next = await attest(["audit", "--config", ws(crm).config, "--json", "--no-mail"]);
    expect(next.code, next.stderr.slice(-2000)).toBe(0);
    runs.push((JSON.parse(next.stdout) as RunResult).run.id);
    // another test file's run may sweep the leftover first (any run sweeps dead owners' containers);
    // either way it is gone once the next run has started, and no run kept it
    expect(next.stderr).not.toMatch(/could not remove leftover/);
    if (!next.stderr.includes(leftover[0]!)) console.warn("leftover was swept by a concurrent run");
    expect(containersOfPid(pid)).toEqual([]);
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
});
