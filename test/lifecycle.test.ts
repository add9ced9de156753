/**
 * What every bad input and every interruption gets: a clear reason, the documented exit code,
 * and nothing left behind (local runtime; the docker suite repeats the container cases).
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import { attest, DUMPS, localSandboxes, localSandboxesOf, privateTmp, workspace } from "./support/cli.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const ws = (body: string) => {
  const w = workspace(
    (dir) => `${body}\nhistory: { csv: ${dir}/reports/history.csv }\nreports: { dir: ${dir}/reports }\n`,
  );
  dirs.push(w.dir);
  return w;
};
const good = `sources: [{ name: good, type: dump-dir, path: ${DUMPS}/good, select: all }]`;

/** Postgres servers whose data directory lies in a sandbox of `runId`. */
function sandboxServers(runId: string): string[] {
  const out = execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" });
  return out.split("\n").filter((l) => l.includes("attest-sandboxes") && l.includes(runId));
}

async function waitFor(what: string, fn: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > ms) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("bad input and interruptions", () => {
  it("exits 2 with the key path for a config error, and for an unknown source", async () => {
    const w = ws(`sources: [{ name: a, type: dump-dir, path: /nonexistent/dir }]`);
    const r = await attest(["audit", "--config", w.config, "--json"]);
    expect(r.code).toBe(2);
    // --json: exactly one document on stdout, the error included
    const doc = JSON.parse(r.stdout) as { status: string; error: { message: string } };
    expect(doc.status).toBe("error");
    expect(doc.error.message).toContain("sources[0].path: directory does not exist");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("sources[0].path: directory does not exist");
    const u = await attest(["drill", "--config", ws(good).config, "--source", "nope"]);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/unknown source nope \(configured: good\)/);
    const m = await attest(["audit"]);
    expect(m.code).toBe(2);
  });

  it("is `error` (exit 3), not a failed backup, when no PostgreSQL binaries are found", async () => {
    const empty = mkdtempSync(join(tmpdir(), "attest-nobin-"));
    dirs.push(empty);
    const w = ws(
      `sandbox: { local: { bin_dir: ${empty} } }\n${good.replace("select: all", "select: latest")}`,
    );
    const r = await attest(["audit", "--config", w.config, "--json", "--no-mail"]);
    expect(r.code).toBe(3);
    const doc = JSON.parse(r.stdout) as RunResult;
    expect(doc.status).toBe("error");
    for (const d of doc.drills) {
      expect(d.verdict).toBe("error");
      expect(d.reason).toMatch(/no PostgreSQL server binaries found/);
    }
  });

  it("is `error` naming both majors for a dump from a newer PostgreSQL than any sandbox", async () => {
    const d = mkdtempSync(join(tmpdir(), "attest-newer-"));
    dirs.push(d);
    const file = join(d, "app_future.dump");
    copyFileSync(join(DUMPS, "good", "app_20261120T0300.dump"), file);
    const buf = readFileSync(file);
    const at = buf.indexOf("15.18 (");
    expect(at).toBeGreaterThan(0);
    buf.write("99", at, "latin1"); // the header now says: dumped from PostgreSQL 99.18
    writeFileSync(file, buf);
    execFileSync("chmod", ["-R", "a+rX", d]);
    const w = ws(`sources: [{ name: future, type: dump-dir, path: ${d} }]`);
    const r = await attest(["drill", "--config", w.config, "--source", "future", "--json", "--no-mail"]);
    expect(r.code).toBe(3);
    const drill = (JSON.parse(r.stdout) as RunResult).drills[0]!;
    expect(drill.verdict).toBe("error");
    expect(drill.reason).toMatch(
      /backup is from PostgreSQL 99; no sandbox of that major or newer is available \(have: 15\)/,
    );
  });

  it("stops on SIGTERM mid-drill: sandbox destroyed, history complete and verifiable, exit 3", async () => {
    const w = ws(good);
    let pid = 0;
    const running = attest(["audit", "--config", w.config, "--json", "--no-mail"], {
      onSpawn: (p) => (pid = p),
    });
    await waitFor("a sandbox of this run to appear", () => localSandboxesOf(pid).length > 0);
    process.kill(pid, "SIGTERM");
    const r = await running;
    expect(r.code).toBe(3);
    const doc = JSON.parse(r.stdout) as RunResult;
    expect(doc.status).toBe("error");
    expect(doc.drills.some((d) => /aborted during .*received SIGTERM/.test(d.reason))).toBe(true);
    expect(doc.drills.length).toBeLessThan(7);
    expect(localSandboxes(doc.run.id)).toEqual([]);
    expect(sandboxServers(doc.run.id)).toEqual([]);
    const v = await attest(["history", "verify", "--config", w.config]);
    expect(v.code, v.stdout).toBe(0);
  });

  it("after a SIGKILL the next run sweeps the leftover sandbox and its server", async () => {
    const w = ws(good);
    // both runs get a TMPDIR of their own: in the shared one, another test file's run could sweep
    // the leftover first, and the next run would have nothing to remove
    const tmp = privateTmp();
    dirs.push(tmp);
    const env = { TMPDIR: tmp };
    let pid = 0;
    const running = attest(["audit", "--config", w.config, "--no-mail"], { env, onSpawn: (p) => (pid = p) });
    let leftover = "";
    await waitFor("a running sandbox server", () => {
      leftover = localSandboxesOf(pid, tmp).find((s) => sandboxServers(s).length > 0) ?? "";
      return leftover !== "";
    });
    process.kill(pid, "SIGKILL");
    await running;
    expect(localSandboxes(undefined, tmp)).toContain(leftover);
    const next = await attest(
      [
        "audit",
        "--config",
        ws(`sources: [{ name: crm, type: dump-dir, path: ${DUMPS}/good, include: ["crm_*"] }]`).config,
        "--json",
        "--no-mail",
      ],
      { env },
    );
    expect(next.code, next.stderr.slice(-2000)).toBe(0);
    expect(next.stderr).toMatch(/removed leftover sandbox/);
    expect(next.stderr).toContain(leftover);
    expect(localSandboxes(undefined, tmp)).not.toContain(leftover);
    expect(sandboxServers(leftover)).toEqual([]);
  });

  it("history verify accepts the history an audit wrote and rejects it after one cell is edited", async () => {
    const w = ws(`sources: [{ name: crm, type: dump-dir, path: ${DUMPS}/good, include: ["crm_*"] }]`);
    expect((await attest(["audit", "--config", w.config, "--no-mail"])).code).toBe(0);
    expect((await attest(["audit", "--config", w.config, "--no-mail"])).code).toBe(0);
    const csv = join(w.dir, "reports", "history.csv");
    const lines = readFileSync(csv, "utf8").trim().split("\n");
    expect(lines).toHaveLength(3);
    const ok = await attest(["history", "verify", "--config", w.config, "--json"]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, rows: 2 });
    writeFileSync(csv, readFileSync(csv, "utf8").replace(/"pass"/, '"fail"'));
    const bad = await attest(["history", "verify", "--config", w.config]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/BROKEN — row 1 .*edited/);
  });
});
