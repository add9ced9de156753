/**
 * The bodies each webhook format receives for a batch of alert events: Attest's own JSON, a
 * Slack incoming-webhook message, a Teams Adaptive Card message, or PagerDuty Events API v2
 * events (one per condition: PagerDuty opens and resolves incidents by `dedup_key`).
 */
import { createHash } from "node:crypto";
import type { RunResult } from "../../model.js";
import { redact } from "../../util/redact.js";
import type { AlertEvent } from "./alert-plan.js";
import type { WebhookConfig } from "./alerts-config.js";

/** What every format is built from. */
export interface AlertBatch {
  organization: string;
  run: RunResult;
  events: readonly AlertEvent[];
  /** The batch's headline and one line per event, as mails and the json format say them. */
  title: string;
  lines: readonly string[];
  now: Date;
}

/** Masks registered secrets in every string of a JSON value. */
function redactJson<T>(value: T): T {
  return JSON.parse(redact(JSON.stringify(value))) as T;
}

const where = (e: AlertEvent) =>
  e.condition.series ? `${e.condition.source}/${e.condition.series}` : e.condition.source;

/** Attest's own format: a `text` field, as Slack-style receivers show it, and the events. */
function jsonBody(b: AlertBatch): Record<string, unknown> {
  return {
    text: redact(
      `Attest ${b.title} (run ${b.run.run.id}, ${b.run.run.kind} ${b.run.status.toUpperCase()})\n${b.lines.join("\n")}`,
    ),
    attest: {
      organization: b.organization,
      run: { id: b.run.run.id, kind: b.run.run.kind, status: b.run.status },
      events: b.events.map((e) => ({
        type: e.type,
        ...e.condition,
        ...(e.resolution ? { resolution: e.resolution } : {}),
      })),
    },
  };
}

// Slack allows 50 blocks a message and 3000 characters a section
const SLACK_EVENT_BLOCKS = 40;
const clip = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);
// Slack mrkdwn treats these three as markup
const mrkdwn = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A Slack incoming-webhook message: `text` for notifications, blocks for the channel. */
function slackBody(b: AlertBatch): Record<string, unknown> {
  const shown = b.lines.slice(0, SLACK_EVENT_BLOCKS);
  const blocks: Array<Record<string, unknown>> = [
    { type: "header", text: { type: "plain_text", text: clip(`Attest ${b.title}`, 150) } },
    ...shown.map((line) => ({ type: "section", text: { type: "mrkdwn", text: clip(mrkdwn(line), 3000) } })),
  ];
  if (b.lines.length > shown.length)
    blocks.push({
      type: "section",
      text: { type: "mrkdwn", text: `…and ${b.lines.length - shown.length} more in the run's report` },
    });
  blocks.push({
    type: "context",
    elements: [
      {
        type: "mrkdwn",
        text: mrkdwn(`${b.run.run.kind} run ${b.run.run.id}: ${b.run.status.toUpperCase()}`),
      },
    ],
  });
  return redactJson({ text: `Attest ${b.title}`, blocks });
}

/** A Teams incoming-webhook (Workflows) message carrying one Adaptive Card. */
function teamsBody(b: AlertBatch): Record<string, unknown> {
  const color = (e: AlertEvent) =>
    e.type === "resolved" ? "Good" : e.condition.severity === "critical" ? "Attention" : "Warning";
  const card = {
    $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
    type: "AdaptiveCard",
    version: "1.4",
    body: [
      { type: "TextBlock", size: "Large", weight: "Bolder", wrap: true, text: `Attest ${b.title}` },
      ...b.events.map((e, i) => ({ type: "TextBlock", wrap: true, color: color(e), text: b.lines[i] })),
      {
        type: "FactSet",
        facts: [
          { title: "Run", value: b.run.run.id },
          { title: "Kind", value: b.run.run.kind },
          { title: "Status", value: b.run.status.toUpperCase() },
        ],
      },
    ],
  };
  return redactJson({
    type: "message",
    attachments: [
      { contentType: "application/vnd.microsoft.card.adaptive", contentUrl: null, content: card },
    ],
  });
}

/**
 * PagerDuty's dedup key of a condition: the same for its trigger, repeats and resolve, one per
 * series and rule (and aspect), so each opens its own incident. Hashed to stay within 255
 * characters whatever the source names.
 */
export function pagerDutyDedupKey(organization: string, conditionKey: string): string {
  const digest = createHash("sha256").update(`${organization}\n${conditionKey}`).digest("hex").slice(0, 32);
  return `attest-${digest}`;
}

/** PagerDuty Events API v2: one trigger or resolve per event. */
function pagerDutyBodies(b: AlertBatch, routingKey: string): Array<Record<string, unknown>> {
  return b.events.map((e, i) => {
    const dedup_key = pagerDutyDedupKey(b.organization, e.condition.key);
    // a resolve needs only the key; PagerDuty closes the incident the trigger opened
    if (e.type === "resolved") return { routing_key: routingKey, event_action: "resolve", dedup_key };
    const c = e.condition;
    const payload = redactJson({
      summary: clip(
        `${c.severity.toUpperCase()} ${where(e)}${c.rule ? ` ${c.rule}` : ""}: ${c.message}`,
        1024,
      ),
      source: where(e),
      severity: c.severity,
      timestamp: b.now.toISOString(),
      component: c.source,
      ...(c.series ? { group: c.series } : {}),
      class: c.rule ?? c.kind,
      custom_details: {
        organization: b.organization,
        line: b.lines[i],
        condition: c.key,
        first_seen: c.firstSeen,
        run: { id: b.run.run.id, kind: b.run.run.kind, status: b.run.status },
      },
    });
    return { routing_key: routingKey, event_action: "trigger", dedup_key, payload, client: "Attest" };
  });
}

/** The bodies to POST to `hook`, in order. */
export function webhookBodies(hook: WebhookConfig, batch: AlertBatch): Array<Record<string, unknown>> {
  switch (hook.format) {
    case "slack":
      return [slackBody(batch)];
    case "teams":
      return [teamsBody(batch)];
    case "pagerduty":
      return pagerDutyBodies(batch, hook.routing_key ?? "");
    default:
      return [jsonBody(batch)];
  }
}
