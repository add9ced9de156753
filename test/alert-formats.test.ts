/**
 * Alert webhooks in each format teams use — Attest's JSON, Slack, Teams, PagerDuty Events
 * API v2 — posted to real receivers on 127.0.0.1, with per-webhook severity routing, a
 * PagerDuty incident resolved by the dedup key that opened it, and per-webhook queues.
 */
import { readFileSync, rmSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config/load.js";
import type { RunResult, Violation } from "../src/model.js";
import { alertStateFile } from "../src/report/alerts/alert-state.js";
import { deliver } from "../src/report/deliver.js";
import { silentLogger } from "../src/util/log.js";
import { backup, drill, HOUR, NOW } from "./report-fixtures.js";
import { startWebhook, type WebhookPeer } from "./report-peers.js";
import { sampleWorkspace } from "./report-sample.js";

const peers: WebhookPeer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) await p.close();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345";
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
  message: "a gap of 2d between backups <b> & more",
  evidence: { aspect: "open" },
};

function run(id: string, at: Date, bad: boolean): RunResult {
  return {
    run: { id, kind: "audit", startedAt: at.toISOString(), finishedAt: at.toISOString() },
    status: bad ? "fail" : "warn",
    drills: [drill(app, "pass"), drill(crm, bad ? "fail" : "pass")],
    violations: bad ? [rpo, gap] : [gap],
  };
}

async function setup() {
  const [json, slack, teams, pd] = await Promise.all([
    startWebhook(),
    startWebhook(),
    startWebhook(),
    startWebhook(),
  ]);
  peers.push(json, slack, teams, pd);
  const ws = sampleWorkspace(
    `alerts:
  min_severity: warning
  webhook: { url: "${json.url}" }
  webhooks:
    - { url: "${pd.url}", format: pagerduty, routing_key: "\${PD_ROUTING_KEY}", min_severity: critical }
    - { url: "${slack.url}", format: slack }
    - { url: "${teams.url}", format: teams, min_severity: critical }
`,
    { PD_ROUTING_KEY: ROUTING_KEY },
    { pdf: false },
  );
  dirs.push(ws.dir);
  const at = (hours: number) => new Date(NOW.getTime() + hours * HOUR);
  const send = (r: RunResult, hours: number) =>
    deliver(r, {
      config: ws.config,
      logger: silentLogger,
      historyHead: "",
      mail: false,
      now: () => at(hours),
    });
  return { json, slack, teams, pd, ws, send, at };
}

type Body = Record<string, unknown>;

/** PagerDuty Events API v2: what its documentation requires of an event. */
function checkPagerDuty(b: Body): void {
  expect(b.routing_key).toBe(ROUTING_KEY);
  expect(["trigger", "resolve"]).toContain(b.event_action);
  expect(typeof b.dedup_key).toBe("string");
  expect((b.dedup_key as string).length).toBeLessThanOrEqual(255);
  if (b.event_action === "resolve") return;
  const p = b.payload as Body;
  expect(typeof p.summary).toBe("string");
  expect((p.summary as string).length).toBeLessThanOrEqual(1024);
  expect(typeof p.source).toBe("string");
  expect(["critical", "error", "warning", "info"]).toContain(p.severity);
  expect(Number.isFinite(Date.parse(p.timestamp as string))).toBe(true);
  expect(typeof p.custom_details).toBe("object");
}

/** A Slack incoming-webhook message: `text`, and blocks of known types within Slack's limits. */
function checkSlack(b: Body): void {
  expect(typeof b.text).toBe("string");
  const blocks = b.blocks as Body[];
  expect(blocks.length).toBeLessThanOrEqual(50);
  expect(blocks[0]).toMatchObject({ type: "header", text: { type: "plain_text" } });
  expect(((blocks[0]!.text as Body).text as string).length).toBeLessThanOrEqual(150);
  for (const block of blocks.slice(1)) {
    expect(["section", "context"]).toContain(block.type);
    if (block.type === "section") {
      expect((block.text as Body).type).toBe("mrkdwn");
      expect(((block.text as Body).text as string).length).toBeLessThanOrEqual(3000);
    }
  }
}

/** A Teams incoming-webhook message with one Adaptive Card attachment. */
function checkTeams(b: Body): Body {
  expect(b.type).toBe("message");
  const attachments = b.attachments as Body[];
  expect(attachments).toHaveLength(1);
  expect(attachments[0]!.contentType).toBe("application/vnd.microsoft.card.adaptive");
  const card = attachments[0]!.content as Body;
  expect(card).toMatchObject({ type: "AdaptiveCard", version: "1.4" });
  expect(card.$schema).toBe("http://adaptivecards.io/schemas/adaptive-card.json");
  for (const el of card.body as Body[]) expect(["TextBlock", "FactSet"]).toContain(el.type);
  return card;
}

describe("alert webhook formats", () => {
  it("each webhook gets its format and its severities; PagerDuty resolves with the dedup key that triggered", async () => {
    const { json, slack, teams, pd, send } = await setup();

    // run 1: a failed drill and an RPO breach (critical), a gap (warning)
    const d1 = await send(run("r1", NOW, true), 0);
    const hooks = d1.filter((d) => d.channel === "alert-webhook");
    expect(hooks.map((d) => d.ok)).toEqual([true, true, true, true]);

    // json (the shorthand): one post, every event, warnings included
    expect(json.bodies).toHaveLength(1);
    expect(String(json.bodies[0]!.text)).toMatch(/^Attest ALERT ACME Corp: 3 new alerts/);
    expect((json.bodies[0]!.attest as { events: unknown[] }).events).toHaveLength(3);

    // slack: one message, the warning included, mrkdwn characters escaped
    expect(slack.bodies).toHaveLength(1);
    checkSlack(slack.bodies[0]!);
    expect(slack.bodies[0]!.text).toBe("Attest ALERT ACME Corp: 3 new alerts");
    const slackText = JSON.stringify(slack.bodies[0]!.blocks);
    expect(slackText).toContain("[ALERT] CRITICAL crm-dumps/crm: restore drill of crm-dumps/crm FAILED");
    expect(slackText).toContain("a gap of 2d between backups &lt;b&gt; &amp; more");
    expect(slackText).toContain("audit run r1: FAIL");

    // teams: critical only
    expect(teams.bodies).toHaveLength(1);
    const card = checkTeams(teams.bodies[0]!);
    const blocks = card.body as Body[];
    expect(blocks[0]!.text).toBe("Attest ALERT ACME Corp: 2 new alerts");
    expect(blocks.filter((b) => b.color === "Attention")).toHaveLength(2);
    expect(JSON.stringify(card)).not.toContain("a gap");

    // pagerduty: one trigger per critical condition, each its own dedup key, the key not masked
    expect(pd.bodies).toHaveLength(2);
    for (const b of pd.bodies) checkPagerDuty(b);
    expect(pd.bodies.map((b) => b.event_action)).toEqual(["trigger", "trigger"]);
    const triggers = new Map(pd.bodies.map((b) => [(b.payload as Body).source as string, b]));
    expect([...triggers.keys()].sort()).toEqual(["app-dumps/app", "crm-dumps/crm"]);
    const crmTrigger = triggers.get("crm-dumps/crm")!;
    expect(crmTrigger.payload).toMatchObject({
      severity: "critical",
      timestamp: NOW.toISOString(),
      component: "crm-dumps",
      group: "crm",
    });
    expect((crmTrigger.payload as Body).summary).toMatch(
      /^CRITICAL crm-dumps\/crm: restore drill of crm-dumps\/crm FAILED/,
    );
    expect((triggers.get("app-dumps/app")!.payload as Body).class).toBe("rpo");
    expect(new Set(pd.bodies.map((b) => b.dedup_key)).size).toBe(2);

    // run 2, a day later, still failing: PagerDuty gets the same keys again (one incident each)
    await send(run("r2", new Date(NOW.getTime() + 25 * HOUR), true), 25);
    expect(pd.bodies).toHaveLength(4);
    expect(
      pd.bodies
        .slice(2)
        .map((b) => b.dedup_key)
        .sort(),
    ).toEqual(
      pd.bodies
        .slice(0, 2)
        .map((b) => b.dedup_key)
        .sort(),
    );

    // run 3: the drill passes and the RPO holds → resolve, by the same dedup keys
    await send(run("r3", new Date(NOW.getTime() + 26 * HOUR), false), 26);
    expect(pd.bodies).toHaveLength(6);
    const resolves = pd.bodies.slice(4);
    for (const b of resolves) checkPagerDuty(b);
    expect(resolves.map((b) => b.event_action)).toEqual(["resolve", "resolve"]);
    expect(resolves.map((b) => b.dedup_key).sort()).toEqual(
      pd.bodies
        .slice(0, 2)
        .map((b) => b.dedup_key)
        .sort(),
    );
    expect(resolves[0]).toEqual({
      routing_key: ROUTING_KEY,
      event_action: "resolve",
      dedup_key: resolves[0]!.dedup_key,
    });

    // slack and teams say it too; the warning that still holds stays open
    expect(slack.bodies.at(-1)!.text).toBe("Attest RESOLVED ACME Corp: 2 resolved");
    checkSlack(slack.bodies.at(-1)!);
    expect((checkTeams(teams.bodies.at(-1)!).body as Body[])[0]!.text).toBe(
      "Attest RESOLVED ACME Corp: 2 resolved",
    );
    expect((checkTeams(teams.bodies.at(-1)!).body as Body[]).filter((b) => b.color === "Good")).toHaveLength(
      2,
    );
  });

  it("a receiver that is down keeps its own payloads; the others are not held up", async () => {
    const { slack, pd, ws, send } = await setup();
    pd.status = 500;
    const d1 = await send(run("r1", NOW, true), 0);
    const failed = d1.filter((d) => d.channel === "alert-webhook" && !d.ok);
    expect(failed).toHaveLength(1);
    expect(failed[0]!.detail).toMatch(/^pagerduty webhook failed \(HTTP 500.*\); 2 payload\(s\) kept/);
    expect(slack.bodies).toHaveLength(1);
    const state = JSON.parse(readFileSync(alertStateFile(ws.config.reports.dir), "utf8"));
    expect(state.pendingWebhooks).toHaveLength(2);
    // the state names the webhook by a hash, never by its URL
    expect(JSON.stringify(state)).not.toContain(pd.url);

    pd.status = 200;
    const d2 = await send(run("r2", new Date(NOW.getTime() + HOUR), true), 1);
    expect(d2.find((d) => d.detail.startsWith("re-sent"))).toMatchObject({
      ok: true,
      detail: "re-sent 2 of 2 earlier alert payload(s)",
    });
    expect(pd.bodies.map((b) => b.event_action)).toEqual(["trigger", "trigger"]);
    for (const b of pd.bodies) checkPagerDuty(b);
    expect(slack.bodies).toHaveLength(1);
    expect(JSON.parse(readFileSync(alertStateFile(ws.config.reports.dir), "utf8")).pendingWebhooks).toEqual(
      [],
    );
  });

  it("format: pagerduty without a routing_key is a configuration error", () => {
    const yaml = `sources: [ { name: a, type: dump-dir, path: /nonexistent } ]
alerts:
  webhooks: [ { url: "http://127.0.0.1:9/x", format: pagerduty } ]
`;
    expect(() => parseConfig(yaml, "/nonexistent/attest.yml")).toThrow(
      "alerts.webhooks[0].routing_key: format: pagerduty needs a routing_key",
    );
  });
});
