/** Alerts: a real webhook receiver and SMTP peer; de-duplication, repetition and resolution across runs. */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { RunResult, Violation } from "../src/model.js";
import { isAbortedDrill } from "../src/policy/drill-outcome.js";
import { planAlerts } from "../src/report/alerts/alert-plan.js";
import { alertStateFile, emptyAlertState } from "../src/report/alerts/alert-state.js";
import { deliver } from "../src/report/deliver.js";
import { silentLogger } from "../src/util/log.js";
import { backup, drill, HOUR, NOW } from "./report-fixtures.js";
import { type SmtpPeer, startSmtp, startWebhook, type WebhookPeer } from "./report-peers.js";
import { sampleWorkspace } from "./report-sample.js";

const closers: Array<SmtpPeer | WebhookPeer> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c.close();
});

const crm = backup("crm-dumps", "crm", 5 * HOUR);
const app = backup("app-dumps", "app", 3 * HOUR);
const rpo: Violation = {
  source: "app-dumps",
  series: "app",
  rule: "rpo",
  severity: "critical",
  message: "newest backup of app-dumps/app is 1d 3h old; the RPO target is 1d 2h",
  evidence: { aspect: "newest" },
};
const gap: Violation = {
  source: "app-dumps",
  series: "app",
  rule: "max_gap",
  severity: "warning",
  message: "a gap",
  evidence: { aspect: "open" },
};

function run(id: string, at: Date, opts: { crmFails: boolean; rpoViolated: boolean }): RunResult {
  const drills = [drill(app, "pass"), drill(crm, opts.crmFails ? "fail" : "pass")];
  const violations = opts.rpoViolated ? [rpo, gap] : [gap];
  return {
    run: { id, kind: "audit", startedAt: at.toISOString(), finishedAt: at.toISOString() },
    status: opts.crmFails || opts.rpoViolated ? "fail" : "warn",
    drills,
    violations,
  };
}

async function setup() {
  const hook = await startWebhook();
  const smtp = await startSmtp();
  closers.push(hook, smtp);
  const ws = sampleWorkspace(
    `mail:
  transport: smtp
  smtp: { host: 127.0.0.1, port: ${smtp.port}, starttls: false, timeout: 10s }
  from: attest@acme.test
alerts:
  email: [oncall@acme.test]
  webhook: { url: "${hook.url}" }
  repeat_after: 24h
`,
    {},
    { pdf: false },
  );
  const at = (hours: number) => new Date(NOW.getTime() + hours * HOUR);
  const send = (r: RunResult, hours: number) =>
    deliver(r, {
      config: ws.config,
      logger: silentLogger,
      historyHead: "",
      mail: true,
      now: () => at(hours),
    });
  return { hook, smtp, ws, send, at };
}

const texts = (hook: WebhookPeer) => hook.bodies.map((b) => String(b.text));

describe("alerts across runs", () => {
  it("alert at once, once; repeat after the interval; resolve when cleared", async () => {
    const { hook, smtp, ws, send, at } = await setup();

    // run 1: a drill fails and a critical violation holds → one webhook post, one alert mail
    const d1 = await send(run("r1", at(0), { crmFails: true, rpoViolated: true }), 0);
    expect(d1.filter((d) => d.channel.startsWith("alert")).map((d) => [d.channel, d.ok])).toEqual([
      ["alert-mail", true],
      ["alert-webhook", true],
    ]);
    expect(hook.bodies).toHaveLength(1);
    const body = hook.bodies[0]!;
    expect(body.text).toMatch(/^Attest ALERT ACME Corp: 2 new alerts/);
    expect(body.text).toContain(
      "[ALERT] CRITICAL crm-dumps/crm: restore drill of crm-dumps/crm FAILED on crm-",
    );
    expect(body.text).toContain(
      "[ALERT] CRITICAL app-dumps/app rpo: newest backup of app-dumps/app is 1d 3h old",
    );
    expect(body.text).not.toContain("a gap"); // warnings do not alert by default
    expect((body.attest as { events: unknown[] }).events).toHaveLength(2);
    // one mail per condition, its subject naming the source, series and verdict
    expect(smtp.received).toHaveLength(2);
    expect(smtp.received[0]!.envelope.to).toEqual(["oncall@acme.test"]);
    expect(smtp.received.map((r) => r.mail.subject).sort()).toEqual([
      "[Attest] ALERT CRITICAL app-dumps/app: rpo violated (CRITICAL)",
      "[Attest] ALERT CRITICAL crm-dumps/crm: backup failed (FAIL)",
    ]);
    const state = JSON.parse(readFileSync(alertStateFile(ws.config.reports.dir), "utf8"));
    expect(Object.keys(state.conditions).sort()).toEqual([
      "drill:crm-dumps/crm",
      "violation:app-dumps/app/rpo/newest",
    ]);

    // run 2, an hour later, same conditions: nothing is sent
    const d2 = await send(run("r2", at(1), { crmFails: true, rpoViolated: true }), 1);
    expect(d2.find((d) => d.channel === "alerts")?.detail).toBe("nothing new to alert (2 open conditions)");
    expect(hook.bodies).toHaveLength(1);
    expect(smtp.received).toHaveLength(2);

    // run 3, 25 hours after the first alert: both are repeated
    await send(run("r3", at(25), { crmFails: true, rpoViolated: true }), 25);
    expect(hook.bodies).toHaveLength(2);
    expect(texts(hook)[1]).toMatch(/^Attest ALERT ACME Corp: 2 still open/);
    expect(texts(hook)[1]).toContain("[STILL] CRITICAL app-dumps/app rpo:");
    expect(texts(hook)[1]).toContain(`(since ${NOW.toISOString().slice(0, 16).replace("T", " ")} UTC)`);

    // run 4: the drill passes, the violation is gone → resolved, once
    await send(run("r4", at(26), { crmFails: false, rpoViolated: false }), 26);
    expect(hook.bodies).toHaveLength(3);
    expect(texts(hook)[2]).toMatch(/^Attest RESOLVED ACME Corp: 2 resolved/);
    expect(texts(hook)[2]).toContain("[RESOLVED] crm-dumps/crm:");
    expect(texts(hook)[2]).toContain("[RESOLVED] app-dumps/app rpo:");
    // the resolved notice says what passed, on which backup, and when
    expect(texts(hook)[2]).toContain(
      `now restore drill of crm-dumps/crm PASS on ${crm.id} (backup of ${crm.createdAt.slice(0, 16).replace("T", " ")} UTC), run r4`,
    );
    await send(run("r5", at(27), { crmFails: false, rpoViolated: false }), 27);
    expect(hook.bodies).toHaveLength(3);
    expect(smtp.received).toHaveLength(6);

    // the crm mails form one thread: the reminder and the resolution answer the first alert
    const crmMails = smtp.received.filter((r) => r.mail.subject?.includes("crm-dumps/crm"));
    expect(crmMails.map((r) => r.mail.subject)).toEqual([
      "[Attest] ALERT CRITICAL crm-dumps/crm: backup failed (FAIL)",
      "[Attest] STILL CRITICAL crm-dumps/crm: backup failed (FAIL)",
      "[Attest] RESOLVED crm-dumps/crm: backup failed (FAIL)",
    ]);
    const first = crmMails[0]!.mail.messageId!;
    for (const later of crmMails.slice(1)) {
      expect(later.mail.inReplyTo).toBe(first);
      expect(later.mail.messageId).not.toBe(first);
      expect([later.mail.references].flat()).toContain(first);
    }
    for (const r of smtp.received) expect(r.mail.headers.get("auto-submitted")).toBe("auto-generated");
  });

  it("a webhook that fails keeps its payload and delivers it with the next run, in order", async () => {
    const { hook, ws, send, at } = await setup();
    hook.status = 500;
    const d1 = await send(run("r1", at(0), { crmFails: true, rpoViolated: false }), 0);
    expect(d1.find((d) => d.channel === "alert-webhook")).toMatchObject({ ok: false });
    expect(d1.find((d) => d.channel === "alert-webhook")!.detail).toContain("HTTP 500");
    const state = JSON.parse(readFileSync(alertStateFile(ws.config.reports.dir), "utf8"));
    expect(state.pendingWebhooks).toHaveLength(1);

    hook.status = 200;
    // the next run brings a new alert of its own
    const d2 = await send(run("r2", at(1), { crmFails: true, rpoViolated: true }), 1);
    expect(d2.filter((d) => d.channel === "alert-webhook").every((d) => d.ok)).toBe(true);
    expect(texts(hook)).toHaveLength(2);
    expect(texts(hook)[0]).toContain("crm-dumps/crm: restore drill");
    expect(texts(hook)[1]).toContain("app-dumps/app rpo:");
    expect(JSON.parse(readFileSync(alertStateFile(ws.config.reports.dir), "utf8")).pendingWebhooks).toEqual(
      [],
    );
  });

  it("alert mail that cannot be sent waits in the outbox; the alert is not repeated", async () => {
    const { smtp, hook, ws, send, at } = await setup();
    smtp.mode = "refuse";
    const d1 = await send(run("r1", at(0), { crmFails: true, rpoViolated: false }), 0);
    expect(d1.find((d) => d.channel === "alert-mail")).toMatchObject({ ok: false });
    expect(
      readdirSync(`${ws.config.reports.dir}/outbox/pending`).filter((f) => f.endsWith(".eml")),
    ).toHaveLength(1);
    smtp.mode = "accept";
    const d2 = await send(run("r2", at(1), { crmFails: true, rpoViolated: false }), 1);
    expect(d2.find((d) => d.channel === "mail-outbox")).toMatchObject({ ok: true });
    expect(smtp.received).toHaveLength(1);
    expect(smtp.received[0]!.mail.text).toContain("[ALERT] CRITICAL crm-dumps/crm");
    expect(hook.bodies).toHaveLength(1);
  });

  it("a damaged state file is set aside, not fatal", async () => {
    const { ws, send, at, hook } = await setup();
    const file = alertStateFile(ws.config.reports.dir);
    const { mkdirSync } = await import("node:fs");
    mkdirSync(ws.config.reports.dir, { recursive: true });
    writeFileSync(file, "{ not json");
    const d = await send(run("r1", at(0), { crmFails: true, rpoViolated: false }), 0);
    expect(d.find((x) => x.channel === "alerts" && !x.ok)?.detail).toContain("was unreadable");
    expect(hook.bodies).toHaveLength(1);
    expect(readdirSync(ws.config.reports.dir).some((f) => f.startsWith("alert-state.json.corrupt-"))).toBe(
      true,
    );
    expect(existsSync(file)).toBe(true);
  });
});

describe("alert plan", () => {
  const opts = { now: NOW, repeatAfterMs: 24 * HOUR, minSeverity: "critical" as const, resolved: true };
  it("a source outside the run's scope keeps its conditions open", () => {
    const first = planAlerts(run("r1", NOW, { crmFails: false, rpoViolated: true }), emptyAlertState(), {
      ...opts,
      scope: new Set(["app-dumps"]),
    });
    expect(first.events.map((e) => e.type)).toEqual(["new"]);
    // a drill of crm-dumps only: app-dumps was not evaluated, its rpo condition stays
    const crmOnly: RunResult = {
      ...run("r2", NOW, { crmFails: false, rpoViolated: false }),
      violations: [],
      drills: [drill(crm)],
    };
    const second = planAlerts(crmOnly, first.next, { ...opts, scope: new Set(["crm-dumps"]) });
    expect(second.events).toEqual([]);
    expect(Object.keys(second.next.conditions)).toEqual(["violation:app-dumps/app/rpo/newest"]);
  });

  it("an escalation from warning to critical alerts again at once", () => {
    const warnOnly = { ...opts, minSeverity: "warning" as const, scope: new Set(["app-dumps"]) };
    const r = (sev: "warning" | "critical"): RunResult => ({
      ...run("r", NOW, { crmFails: false, rpoViolated: false }),
      violations: [{ ...rpo, severity: sev }],
    });
    const a = planAlerts(r("warning"), emptyAlertState(), warnOnly);
    const b = planAlerts(r("critical"), a.next, warnOnly);
    expect(b.events.map((e) => [e.type, e.condition.severity])).toEqual([["new", "critical"]]);
  });

  it("another backup failing is a new alert; the same one failing again is not", () => {
    const scope = new Set(["crm-dumps"]);
    const other = backup("crm-dumps", "crm", 2 * HOUR);
    const r = (b: typeof crm): RunResult => ({
      ...run("r", NOW, { crmFails: false, rpoViolated: false }),
      violations: [],
      drills: [drill(b, "fail")],
    });
    const a = planAlerts(r(crm), emptyAlertState(), { ...opts, scope });
    const same = planAlerts(r(crm), a.next, { ...opts, scope });
    const next = planAlerts(r(other), a.next, { ...opts, scope });
    expect(same.events).toEqual([]);
    expect(next.events.map((e) => e.type)).toEqual(["new"]);
  });
});

describe("what a drill's verdict alerts", () => {
  const only = (id: string, at: Date, d: RunResult["drills"][number]): RunResult => ({
    run: { id, kind: "drill", startedAt: at.toISOString(), finishedAt: at.toISOString() },
    status: d.verdict,
    drills: [d],
    violations: [],
  });
  const aborted = drill(crm, "error", 5_000, {
    reason: "drill aborted during restore: received SIGTERM",
  });
  const broken = drill(crm, "error", 5_000, { reason: "provision: Docker engine unreachable" });

  it("an abort by a signal never alerts; an error alerts on its second run in a row, at warning", async () => {
    const { hook, smtp, send, at } = await setup();
    // aborted three times in a row: nobody is paged, and aborts do not count toward the error streak
    for (const h of [0, 1, 2]) await send(only(`a${h}`, at(h), aborted), h);
    expect(hook.hits).toBe(0);
    expect(smtp.received).toHaveLength(0);

    // the first error is not enough
    await send(only("e1", at(3), broken), 3);
    expect(hook.hits).toBe(0);
    expect(smtp.received).toHaveLength(0);
    // an abort in between neither alerts nor resets the streak
    await send(only("a3", at(4), aborted), 4);
    expect(hook.hits).toBe(0);
    // the second error in a row alerts, as "could not verify", not as a failed backup
    await send(only("e2", at(5), broken), 5);
    expect(hook.bodies).toHaveLength(1);
    expect(texts(hook)[0]).toContain(
      "[ALERT] WARNING crm-dumps/crm: restore drill of crm-dumps/crm could not verify (ERROR)",
    );
    expect(texts(hook)[0]).not.toContain("FAILED");
    expect(smtp.received.map((r) => r.mail.subject)).toEqual([
      "[Attest] ALERT WARNING crm-dumps/crm: could not verify (ERROR)",
    ]);
    expect(smtp.received[0]!.mail.headers.get("auto-submitted")).toBe("auto-generated");

    // a pass resolves it, saying what passed
    await send(only("p1", at(6), drill(crm, "pass")), 6);
    expect(texts(hook)[1]).toContain("[RESOLVED] crm-dumps/crm:");
    expect(texts(hook)[1]).toContain(`now restore drill of crm-dumps/crm PASS on ${crm.id}`);
    // after the pass the streak starts over: one error is quiet again
    await send(only("e3", at(7), broken), 7);
    expect(hook.bodies).toHaveLength(2);
  });

  it("a failure alerts at once, critical, whatever came before", async () => {
    const { hook, send, at } = await setup();
    await send(only("e1", at(0), broken), 0);
    await send(only("f1", at(1), drill(crm, "fail", 5_000, { reason: "pg_restore: invalid TOC" })), 1);
    expect(texts(hook)).toHaveLength(1);
    expect(texts(hook)[0]).toContain("[ALERT] CRITICAL crm-dumps/crm: restore drill of crm-dumps/crm FAILED");
  });

  it("error_after: 1 alerts on the first error", () => {
    const a = planAlerts(only("e1", NOW, broken), emptyAlertState(), {
      now: NOW,
      repeatAfterMs: 24 * HOUR,
      minSeverity: "critical",
      resolved: true,
      scope: new Set(["crm-dumps"]),
      errorAfter: 1,
    });
    expect(a.events.map((e) => [e.type, e.condition.key, e.condition.severity])).toEqual([
      ["new", "drill-error:crm-dumps/crm", "warning"],
    ]);
  });
});

describe("webhook delivery within a run", () => {
  it("a receiver failing twice gets the payload on the third try, in the same run", async () => {
    const { hook, send, at } = await setup();
    hook.failNext = 2;
    const d = await send(run("r1", at(0), { crmFails: true, rpoViolated: false }), 0);
    expect(d.find((x) => x.channel === "alert-webhook")).toMatchObject({ ok: true });
    expect(hook.hits).toBe(3);
    expect(hook.bodies).toHaveLength(1);
  });

  it("three failed tries keep the payload for the next run", async () => {
    const { hook, ws, send, at } = await setup();
    hook.failNext = 3;
    const d = await send(run("r1", at(0), { crmFails: true, rpoViolated: false }), 0);
    expect(d.find((x) => x.channel === "alert-webhook")!.detail).toContain(
      "HTTP 503: receiver broken (after 3 tries)",
    );
    expect(hook.hits).toBe(3);
    const state = JSON.parse(readFileSync(alertStateFile(ws.config.reports.dir), "utf8"));
    expect(state.pendingWebhooks).toHaveLength(1);
  });
});

describe("which drills count as aborted", () => {
  const d = (reason: string, extra: Record<string, unknown> = {}) => ({
    ...drill(crm, "error", 1_000, { reason }),
    ...extra,
  });
  it("an abort by a signal, by its reason code or its reason text; a timeout or a failure is not one", () => {
    expect(isAbortedDrill(d("drill aborted during restore: received SIGINT"))).toBe(true);
    expect(isAbortedDrill(d("anything", { outcome: "aborted" }))).toBe(true);
    expect(isAbortedDrill(d("drill timed out after 2h during restore", { outcome: "timed-out" }))).toBe(
      false,
    );
    expect(isAbortedDrill(d("drill timed out after 2h during restore"))).toBe(false);
    expect(isAbortedDrill(d("provision: Docker engine unreachable"))).toBe(false);
    expect(isAbortedDrill({ ...drill(crm, "fail"), reason: "drill aborted during restore: x" })).toBe(false);
  });
});
