/**
 * A real `attest serve` process: a plan runs at start, /metrics and /runs show what it
 * produced, a restart keeps the values, SIGHUP reloads, SIGTERM mid-drill leaves nothing
 * behind and a verifiable history, and the CLI is refused while the service runs.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import { freeLoopbackPort } from "../src/util/net.js";
import {
  attest,
  type CliResult,
  DUMPS,
  localSandboxes,
  localSandboxesOf,
  privateTmp,
  workspace,
} from "./support/cli.js";

const dirs: string[] = [];
const pids = new Set<number>();
afterAll(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const CRM = `{ name: crm, type: dump-dir, path: ${DUMPS}/good, include: ["crm_*"] }`;
const GOOD = `{ name: good, type: dump-dir, path: ${DUMPS}/good, select: all }`;

async function ws(body: (port: number) => string) {
  const port = await freeLoopbackPort();
  const w = workspace(
    (dir) =>
      `${body(port)}\nhistory: { csv: ${dir}/reports/history.csv }\nreports: { dir: ${dir}/reports }\n`,
  );
  dirs.push(w.dir);
  return { ...w, port, url: `http://127.0.0.1:${port}` };
}

/** Starts `attest serve`; `done` resolves when it exits; `stderr()` is what it printed so far. */
function serve(
  config: string,
  env: NodeJS.ProcessEnv = {},
): { pid: () => number; done: Promise<CliResult>; stderr: () => string } {
  let pid = 0;
  let err = "";
  const done = attest(["serve", "--config", config], {
    env,
    onSpawn: (p) => {
      pid = p;
      pids.add(p);
    },
    onStderr: (soFar) => {
      err = soFar;
    },
  });
  void done.then(() => pids.delete(pid));
  return { pid: () => pid, done, stderr: () => err };
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  ms = 60_000,
): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await Promise.resolve()
      .then(fn)
      .catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > ms) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as T };
}

interface Health {
  up: boolean;
  running: Array<{ plan: string; phase: string }>;
  plans: Array<{ name: string; next: string | null; lastRun: { status: string; runId?: string } | null }>;
  lastRun: { plan: string; status: string; runId?: string } | null;
  lastReload: { at: string; ok: boolean; error?: string } | null;
}

/** Parses the Prometheus text format into `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Postgres servers whose data directory lies in a sandbox of `runId`. */
function sandboxServers(runId: string): string[] {
  const out = execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" });
  return out.split("\n").filter((l) => l.includes("attest-sandboxes") && l.includes(runId));
}

describe("attest serve", () => {
  it("runs a plan at start, and /metrics, /runs and /healthz show what that run produced", async () => {
    const w = await ws(
      (port) =>
        `sources: [${CRM}]\nschedule: [{ name: yearly, cron: "0 0 1 1 *", run: audit, run_at_start: true }]\n` +
        `service: { listen: "127.0.0.1:${port}" }`,
    );
    // a plan that cannot fire while the test runs: only the run at start happens (a minutely plan
    // fired a second run whenever the test took longer than what was left of the minute)
    const nextNewYear = (t: number) => Date.UTC(new Date(t).getUTCFullYear() + 1, 0, 1) / 1000;
    const before = Date.now();
    const s = serve(w.config);
    const health = await waitFor("the first run to finish", async () => {
      const h = await getJson<Health>(`${w.url}/healthz`);
      return h.body.lastRun?.runId ? h : undefined;
    });
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ up: true, lastRun: { plan: "yearly", status: "pass" } });
    const runId = health.body.lastRun!.runId!;
    const doc = JSON.parse(
      readFileSync(join(w.dir, "reports", "runs", `${runId}.json`), "utf8"),
    ) as RunResult;
    const drill = doc.drills[0]!;

    const res = await fetch(`${w.url}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parseMetrics(await res.text());
    const l = '{source="crm",series="crm"}';
    expect(m.get("attest_up")).toBe(1);
    expect(m.get(`attest_verification_status${l}`)).toBe(1);
    expect(m.get(`attest_backup_last_timestamp_seconds${l}`)).toBe(Date.parse(drill.backup.createdAt) / 1000);
    expect(m.get(`attest_verification_last_success_timestamp_seconds${l}`)).toBe(
      Date.parse(doc.run.finishedAt) / 1000,
    );
    const since = m.get(`attest_backup_since_last_completion_seconds${l}`)!;
    expect(Math.abs(since - (Date.now() - Date.parse(drill.backup.createdAt)) / 1000)).toBeLessThan(30);
    for (const [phase, ms] of [
      ["provision", drill.timings.provisionMs],
      ["restore", drill.timings.restoreMs],
      ["checks", drill.timings.checksMs],
      ["total", drill.timings.totalMs],
    ] as const) {
      expect(m.get(`attest_restore_duration_seconds{source="crm",series="crm",phase="${phase}"}`)).toBe(
        Math.round(ms) / 1000,
      );
    }
    expect(m.get('attest_runs_total{kind="audit",status="pass"}')).toBe(1);
    const next = m.get('attest_scheduler_next_run_timestamp_seconds{plan="yearly"}')!;
    expect([nextNewYear(before), nextNewYear(Date.now())]).toContain(next);

    const runs = await getJson<Array<{ id: string; status: string; label: string; drills: number }>>(
      `${w.url}/runs?limit=5`,
    );
    expect(runs.body[0]).toMatchObject({ status: "pass", label: "plan yearly", drills: 1 });
    expect(runs.body.map((r) => r.id)).toContain(runId);
    expect((await fetch(`${w.url}/runs?limit=x`)).status).toBe(400);
    expect((await fetch(`${w.url}/nope`)).status).toBe(404);

    process.kill(s.pid(), "SIGTERM");
    const r = await s.done;
    expect(r.code, r.stderr).toBe(0);

    // a restart fills the gauges from the history file before any run
    writeFileSync(
      w.config,
      readFileSync(w.config, "utf8").replace("run_at_start: true", "run_at_start: false"),
    );
    const again = serve(w.config);
    const m2 = await waitFor("the restarted endpoint", async () =>
      parseMetrics(await (await fetch(`${w.url}/metrics`)).text()),
    );
    expect(m2.get(`attest_backup_last_timestamp_seconds${l}`)).toBe(
      m.get(`attest_backup_last_timestamp_seconds${l}`),
    );
    expect(m2.get(`attest_verification_status${l}`)).toBe(1);
    expect(m2.get(`attest_restore_duration_seconds{source="crm",series="crm",phase="total"}`)).toBe(
      m.get(`attest_restore_duration_seconds{source="crm",series="crm",phase="total"}`),
    );
    process.kill(again.pid(), "SIGTERM");
    expect((await again.done).code).toBe(0);
  });

  it("SIGHUP reloads the plans, and keeps the running config when the new one is invalid", async () => {
    const w = await ws(
      (port) =>
        `sources: [${CRM}]\nschedule: [{ name: weekly, cron: "0 8 * * 1" }]\n` +
        `service: { listen: "127.0.0.1:${port}" }`,
    );
    const s = serve(w.config);
    const plans = async () => (await getJson<Health>(`${w.url}/healthz`)).body.plans.map((p) => p.name);
    expect(await waitFor("the endpoint", plans)).toEqual(["weekly"]);
    const good = readFileSync(w.config, "utf8");
    writeFileSync(w.config, good.replace('cron: "0 8 * * 1"', 'cron: "not a cron"'));
    process.kill(s.pid(), "SIGHUP");
    // wait for the reload to have happened (and failed), not for a while: an ignored signal fails here
    const reload = async () => (await getJson<Health>(`${w.url}/healthz`)).body.lastReload ?? undefined;
    expect(await waitFor("the reload", reload)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/schedule\[0\]\.cron/),
    });
    expect(await plans()).toEqual(["weekly"]);
    writeFileSync(w.config, good.replace("schedule: [", 'schedule: [{ name: daily, cron: "0 3 * * *" }, '));
    process.kill(s.pid(), "SIGHUP");
    await waitFor("the new plan", async () => ((await plans()).includes("daily") ? true : undefined));
    expect(await reload()).toMatchObject({ ok: true });
    process.kill(s.pid(), "SIGTERM");
    const r = await s.done;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/reload failed; keeping the running configuration.*schedule\[0\]\.cron/);
    expect(r.stderr).toMatch(/configuration reloaded/);
  });

  it("SIGTERM mid-drill: the CLI was refused meanwhile, no sandbox is left, history verifies, exit 0 in the grace", async () => {
    const w = await ws(
      (port) =>
        `sources: [${GOOD}]\nschedule: [{ name: all, cron: "0 8 * * 1", run_at_start: true }]\n` +
        `service: { listen: "127.0.0.1:${port}", shutdown_grace: 40s }`,
    );
    // the first drill holds still at the start of its restore until the service is stopped:
    // the SIGTERM below lands mid-drill every time, not when a sleep happens to end there
    const s = serve(w.config, { ATTEST_TEST_STOP_AT: "restore:WAIT" });
    await waitFor("the first drill at its restore", () =>
      s.stderr().includes("test stop point restore: waiting") ? true : undefined,
    );
    expect(localSandboxesOf(s.pid()).length).toBeGreaterThan(0);

    // the service's run holds the lock: a CLI audit on the same config is refused at once
    const cli = await attest(["audit", "--config", w.config, "--no-mail"]);
    expect(cli.code).toBe(3);
    expect(cli.stderr).toMatch(
      new RegExp(
        `another Attest run \\(pid ${s.pid()}, run [0-9a-z-]+, started [0-9T:.-]+Z\\) holds ${w.dir}/reports/history.csv.lock; retry later or pass --wait 10m`,
      ),
    );

    const t0 = Date.now();
    process.kill(s.pid(), "SIGTERM");
    const r = await s.done;
    expect(Date.now() - t0).toBeLessThan(40_000);
    expect(r.code, r.stderr).toBe(0);
    const state = JSON.parse(readFileSync(join(w.dir, "reports", "scheduler-state.json"), "utf8")) as {
      plans: Record<string, { handledThrough?: string; lastRun: { runId: string; status: string } }>;
    };
    const last = state.plans.all!.lastRun;
    expect(last.status).toBe("error");
    // aborted by shutdown: not handled, so catch-up runs it after the restart
    expect(state.plans.all!.handledThrough).toBeUndefined();
    const doc = JSON.parse(
      readFileSync(join(w.dir, "reports", "runs", `${last.runId}.json`), "utf8"),
    ) as RunResult;
    expect(doc.status).toBe("error");
    expect(doc.drills.map((d) => d.reason)).toEqual(["drill aborted during restore: received SIGTERM"]);
    expect(localSandboxes(last.runId)).toEqual([]);
    expect(sandboxServers(last.runId)).toEqual([]);
    expect(existsSync(join(w.dir, "reports", "history.csv.lock"))).toBe(false);
    const v = await attest(["history", "verify", "--config", w.config]);
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/OK — [1-9]\d* rows/);
  });

  it("after a SIGKILL, the next start sweeps the leftover sandbox and takes over the stale lock", async () => {
    const w = await ws(
      (port) =>
        `sources: [${GOOD}]\nschedule: [{ name: all, cron: "0 8 * * 1", run_at_start: true }]\n` +
        `service: { listen: "127.0.0.1:${port}" }`,
    );
    // both services get a TMPDIR of their own: in the shared one, another test file's run could
    // sweep the leftover before the restart does
    const tmp = privateTmp();
    dirs.push(tmp);
    const env = { TMPDIR: tmp };
    const killed = serve(w.config, env);
    const leftover = await waitFor("a running sandbox server", () =>
      localSandboxesOf(killed.pid(), tmp).find((s) => sandboxServers(s).length > 0),
    );
    process.kill(killed.pid(), "SIGKILL");
    await killed.done;
    expect(localSandboxes(undefined, tmp)).toContain(leftover);
    expect(existsSync(join(w.dir, "reports", "history.csv.lock"))).toBe(true);

    writeFileSync(
      w.config,
      readFileSync(w.config, "utf8").replace(GOOD, CRM).replace("name: all", "name: crm"),
    );
    const next = serve(w.config, env);
    const h = await waitFor("the run after the restart", async () => {
      const r = await getJson<Health>(`${w.url}/healthz`);
      return r.body.lastRun?.runId ? r.body : undefined;
    });
    expect(h.lastRun).toMatchObject({ plan: "crm", status: "pass" });
    expect(localSandboxes(undefined, tmp)).not.toContain(leftover);
    expect(sandboxServers(leftover)).toEqual([]);
    process.kill(next.pid(), "SIGTERM");
    const r = await next.done;
    expect(r.stderr).toMatch(/removed leftover sandbox/);
    expect(r.stderr).toContain(leftover);
    expect(r.code).toBe(0);
    expect(existsSync(join(w.dir, "reports", "history.csv.lock"))).toBe(false);
  });

  it("refuses a non-loopback listen address (exit 2) and a busy port (exit 3)", async () => {
    const remote = await ws(() => `sources: [${CRM}]\nservice: { listen: "0.0.0.0:9187" }`);
    const r = await attest(["serve", "--config", remote.config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("service.listen: 0.0.0.0:9187 is not a loopback address");
    const first = await ws((port) => `sources: [${CRM}]\nservice: { listen: "127.0.0.1:${port}" }`);
    const s = serve(first.config);
    await waitFor("the endpoint", async () => (await fetch(`${first.url}/healthz`)).ok || undefined);
    const second = await attest(["serve", "--config", first.config]);
    expect(second.code).toBe(3);
    expect(second.stderr).toContain(`cannot listen on 127.0.0.1:${first.port}: address in use`);
    process.kill(s.pid(), "SIGTERM");
    expect((await s.done).code).toBe(0);
  });
});
