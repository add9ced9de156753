/**
 * Sends the alerts a run calls for, by e-mail and webhook, and remembers what was sent.
 * A webhook that fails keeps its payload for the next run; mail that fails waits in the outbox.
 */
import { createHash } from "node:crypto";
import type { Config } from "../../config/schema.js";
import type { RunResult, Severity } from "../../model.js";
import type { Logger } from "../../util/log.js";
import { redact } from "../../util/redact.js";
import type { Mailer } from "../mail/mailer.js";
import { alertMail } from "./alert-mail.js";
import { type AlertEvent, planAlerts } from "./alert-plan.js";
import { alertStateFile, loadAlertState, type PendingWebhook, saveAlertState } from "./alert-state.js";
import { type AlertsConfig, alertWebhooks, type WebhookConfig } from "./alerts-config.js";
import { postWebhook } from "./webhook.js";
import { webhookBodies } from "./webhook-payloads.js";

/** One channel's outcome, as RunResult.delivery records it. */
export type Delivery = NonNullable<RunResult["delivery"]>[number];

/** What sending alerts needs. */
export interface AlertContext {
  config: Config & { alerts: AlertsConfig };
  /** Undefined when e-mail is off for this run (`--no-mail`) or not configured. */
  mailer?: Mailer;
  /** Sources the run evaluated (only their conditions can clear). */
  scope: ReadonlySet<string>;
  now: Date;
  logger: Logger;
}

/** Webhook payloads kept at most (the oldest are dropped first). */
const MAX_PENDING = 100;

const TAG = { new: "ALERT", repeat: "STILL", resolved: "RESOLVED" } as const;

/** One line per event: `[ALERT] CRITICAL crm-dumps/crm: restore drill … FAILED …`. */
export function eventLine(e: AlertEvent): string {
  const c = e.condition;
  const where = c.series ? `${c.source}/${c.series}` : c.source;
  const since = e.type === "repeat" ? ` (since ${c.firstSeen.slice(0, 16).replace("T", " ")} UTC)` : "";
  const fixed = e.resolution ? ` — now ${e.resolution}` : "";
  return `[${TAG[e.type]}] ${e.type === "resolved" ? "" : `${c.severity.toUpperCase()} `}${where}${c.rule ? ` ${c.rule}` : ""}: ${c.message}${since}${fixed}`;
}

/** The headline of a batch: "ALERT ACME: 2 new alerts, 1 resolved". */
export function batchTitle(org: string, events: readonly AlertEvent[]): string {
  const n = (t: AlertEvent["type"]) => events.filter((e) => e.type === t).length;
  const parts = [
    n("new") && `${n("new")} new alert${n("new") === 1 ? "" : "s"}`,
    n("repeat") && `${n("repeat")} still open`,
    n("resolved") && `${n("resolved")} resolved`,
  ].filter(Boolean);
  const tag = events.some((e) => e.type !== "resolved") ? "ALERT" : "RESOLVED";
  return `${tag} ${org}: ${parts.join(", ")}`;
}

/** Plans, sends and records the alerts of a run. Never throws. */
export async function sendAlerts(run: RunResult, ctx: AlertContext): Promise<Delivery[]> {
  const cfg = ctx.config.alerts;
  const useMail = cfg.email.length > 0 && ctx.mailer !== undefined;
  const hooks = alertWebhooks(cfg);
  if (!useMail && hooks.length === 0) {
    const why = cfg.email.length
      ? "e-mail is off for this run and no webhook is configured"
      : "no alert channel is configured";
    return [{ channel: "alerts", ok: true, detail: `${why}; alert state unchanged` }];
  }
  const out: Delivery[] = [];
  const file = alertStateFile(ctx.config.reports.dir);
  const loaded = loadAlertState(file);
  if (loaded.problem) {
    ctx.logger.warn(loaded.problem);
    out.push({ channel: "alerts", ok: false, detail: loaded.problem });
  }
  const { events, next } = planAlerts(run, loaded.state, {
    now: ctx.now,
    repeatAfterMs: cfg.repeat_after,
    minSeverity: cfg.min_severity,
    resolved: cfg.resolved,
    scope: ctx.scope,
    errorAfter: cfg.error_after,
    errorSeverity: cfg.error_severity,
  });

  // undelivered payloads of each webhook first, oldest first, so receivers see events in order
  const firstId = hooks[0] ? webhookId(hooks[0]) : "";
  const queued = new Map<string, PendingWebhook[]>();
  for (const p of loaded.state.pendingWebhooks) {
    const id = p.hook ?? firstId;
    queued.set(id, [...(queued.get(id) ?? []), { ...p, hook: id }]);
  }
  for (const hook of hooks) {
    const id = webhookId(hook);
    const left = await resend(hook, queued.get(id) ?? []);
    if (left) {
      out.push(left.delivery);
      queued.set(id, left.pending);
    }
  }

  if (events.length) {
    if (useMail) {
      // one mail per condition, so its subject can say what and where, and it threads with its kin
      const footer = `Run ${run.run.id} (${run.run.kind} ${run.status.toUpperCase()}). The run's full report is kept in ${ctx.config.reports.dir}.`;
      const results = [];
      for (const e of events) {
        const message = alertMail(e, {
          org: ctx.config.organization.name,
          from: ctx.config.mail?.from ?? "",
          to: [...cfg.email],
          prefix: ctx.config.mail?.subject_prefix ?? "[Attest]",
          body: redact(`${eventLine(e)}\n\n${footer}`),
          now: ctx.now,
        });
        results.push(await ctx.mailer!.send({ ...message, subject: redact(message.subject) }));
      }
      const failed = results.filter((r) => !r.delivered);
      out.push({
        channel: "alert-mail",
        ok: failed.length === 0,
        detail: failed[0]
          ? `${failed.length} of ${results.length} alert mail(s) not delivered: ${failed[0].detail}`
          : `${results.length} alert mail(s): ${results[0]!.detail}`,
      });
    }
    for (const hook of hooks) {
      const mine = events.filter((e) => atLeast(e.condition.severity, hook.min_severity));
      if (mine.length === 0) continue;
      const id = webhookId(hook);
      const bodies = webhookBodies(hook, {
        organization: ctx.config.organization.name,
        run,
        events: mine,
        title: batchTitle(ctx.config.organization.name, mine),
        lines: mine.map(eventLine),
        now: ctx.now,
      });
      const pending = queued.get(id) ?? [];
      let err: string | undefined;
      let sent = 0;
      for (const body of bodies) {
        // behind undelivered payloads, a new one waits its turn
        if (!err && pending.length === 0) err = await postWebhook(hook, body);
        else err ??= "queued behind earlier undelivered payloads";
        if (err)
          pending.push({ hook: id, body, queuedAt: ctx.now.toISOString(), attempts: 1, lastError: err });
        else sent++;
      }
      queued.set(id, pending);
      if (err) {
        out.push({
          channel: "alert-webhook",
          ok: false,
          detail: `${hook.format} webhook failed (${err}); ${bodies.length - sent} payload(s) kept for the next run`,
        });
      } else
        out.push({
          channel: "alert-webhook",
          ok: true,
          detail: `${mine.length} event(s) posted${hook.format === "json" ? "" : ` (${hook.format})`}`,
        });
    }
  } else {
    const open = Object.keys(next.conditions).length;
    out.push({
      channel: "alerts",
      ok: true,
      detail: `nothing new to alert (${open} open condition${open === 1 ? "" : "s"})`,
    });
  }

  try {
    // payloads of webhooks no longer configured are dropped: nobody could receive them
    const pending = hooks.flatMap((h) => queued.get(webhookId(h)) ?? []);
    saveAlertState(file, { ...next, pendingWebhooks: pending.slice(-MAX_PENDING) });
  } catch (err) {
    out.push({ channel: "alerts", ok: false, detail: `could not save ${file}: ${(err as Error).message}` });
  }
  return out;
}

const RANK: Record<Severity, number> = { warning: 1, critical: 2 };
const atLeast = (s: Severity, min: Severity | undefined) => min === undefined || RANK[s] >= RANK[min];

/** A stable id of a webhook for its queued payloads; a hash, so the state file holds no URL. */
export function webhookId(hook: WebhookConfig): string {
  return createHash("sha256").update(`${hook.format}\n${hook.url}`).digest("hex").slice(0, 16);
}

/** Re-sends a webhook's queued payloads, stopping at the first failure; undefined when none were queued. */
async function resend(
  hook: WebhookConfig,
  pending: readonly PendingWebhook[],
): Promise<{ delivery: Delivery; pending: PendingWebhook[] } | undefined> {
  if (pending.length === 0) return undefined;
  const left: PendingWebhook[] = [];
  for (const p of pending) {
    const err = left.length ? undefined : await postWebhook(hook, p.body);
    if (left.length) left.push(p);
    else if (err) left.push({ ...p, attempts: p.attempts + 1, lastError: err });
  }
  const sent = pending.length - left.length;
  const why = left[0] ? `; ${left.length} kept: ${left[0].lastError}` : "";
  return {
    delivery: {
      channel: "alert-webhook",
      ok: left.length === 0,
      detail: `re-sent ${sent} of ${pending.length} earlier alert payload(s)${why}`,
    },
    pending: left,
  };
}
