/**
 * Sends the alerts a run calls for, by e-mail and webhook, and remembers what was sent.
 * A webhook that fails keeps its payload for the next run; mail that fails waits in the outbox.
 */
import type { Config } from "../../config/schema.js";
import type { RunResult } from "../../model.js";
import type { Logger } from "../../util/log.js";
import { redact } from "../../util/redact.js";
import type { Mailer } from "../mail/mailer.js";
import { alertMail } from "./alert-mail.js";
import { type AlertEvent, planAlerts } from "./alert-plan.js";
import { alertStateFile, loadAlertState, type PendingWebhook, saveAlertState } from "./alert-state.js";
import type { AlertsConfig } from "./alerts-config.js";
import { postWebhook } from "./webhook.js";

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
  if (!useMail && !cfg.webhook) {
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

  let pending: PendingWebhook[] = [...loaded.state.pendingWebhooks];
  if (cfg.webhook && pending.length) {
    // older payloads first, so receivers see events in order; stop at the first failure
    const left: PendingWebhook[] = [];
    for (const p of pending) {
      const err = left.length ? undefined : await postWebhook(cfg.webhook, p.body);
      if (left.length) left.push(p);
      else if (err) left.push({ ...p, attempts: p.attempts + 1, lastError: err });
    }
    const sent = pending.length - left.length;
    const why = left[0] ? `; ${left.length} kept: ${left[0].lastError}` : "";
    out.push({
      channel: "alert-webhook",
      ok: left.length === 0,
      detail: `re-sent ${sent} of ${pending.length} earlier alert payload(s)${why}`,
    });
    pending = left;
  }

  if (events.length) {
    const title = batchTitle(ctx.config.organization.name, events);
    const lines = events.map(eventLine);
    const text = redact(
      `Attest ${title} (run ${run.run.id}, ${run.run.kind} ${run.status.toUpperCase()})\n${lines.join("\n")}`,
    );
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
    if (cfg.webhook) {
      const body: Record<string, unknown> = {
        text,
        attest: {
          organization: ctx.config.organization.name,
          run: { id: run.run.id, kind: run.run.kind, status: run.status },
          events: events.map((e) => ({
            type: e.type,
            ...e.condition,
            ...(e.resolution ? { resolution: e.resolution } : {}),
          })),
        },
      };
      // behind undelivered payloads, a new one waits its turn
      const err = pending.length
        ? "queued behind earlier undelivered payloads"
        : await postWebhook(cfg.webhook, body);
      if (err) {
        pending.push({ body, queuedAt: ctx.now.toISOString(), attempts: 1, lastError: err });
        out.push({
          channel: "alert-webhook",
          ok: false,
          detail: `webhook failed (${err}); kept for the next run`,
        });
      } else out.push({ channel: "alert-webhook", ok: true, detail: `${events.length} event(s) posted` });
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
    saveAlertState(file, { ...next, pendingWebhooks: pending.slice(-MAX_PENDING) });
  } catch (err) {
    out.push({ channel: "alerts", ok: false, detail: `could not save ${file}: ${(err as Error).message}` });
  }
  return out;
}
