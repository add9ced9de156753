/** Configuration of alerts (`alerts:`): e-mail recipients, webhooks and their formats, repetition. */
import { z } from "zod";
import { durationSchema } from "../../config/common-schema.js";

/** Payload formats a webhook can receive. */
export const WEBHOOK_FORMATS = ["json", "slack", "teams", "pagerduty"] as const;
/** A payload format. */
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** One alert webhook. */
export const webhookSchema = z
  .object({
    url: z.string().url(),
    /**
     * json: a `text` field plus the events (Mattermost, generic receivers); slack / teams:
     * their incoming-webhook payloads; pagerduty: Events API v2, one event per condition.
     */
    format: z.enum(WEBHOOK_FORMATS).default("json"),
    /** PagerDuty integration (routing) key; required with `format: pagerduty`. */
    routing_key: z.string().min(1).optional(),
    /** Least severity this webhook receives (narrows `alerts.min_severity`, never widens it). */
    min_severity: z.enum(["warning", "critical"]).optional(),
    headers: z.record(z.string(), z.string()).default({}),
    timeout: durationSchema.prefault("10s"),
  })
  .strict()
  .refine((h) => h.format !== "pagerduty" || h.routing_key !== undefined, {
    message: "format: pagerduty needs a routing_key",
    path: ["routing_key"],
  });

/** One resolved webhook. */
export type WebhookConfig = z.infer<typeof webhookSchema>;

/** The `alerts:` section. */
export const alertsSchema = z
  .object({
    /** Recipients of alert mails (sent through the `mail:` transport). */
    email: z.array(z.string().min(3)).default([]),
    /** One webhook: shorthand for a one-item `webhooks` list (sent first). */
    webhook: webhookSchema.optional(),
    /** Webhooks, each with its payload format and the least severity it is sent. */
    webhooks: z.array(webhookSchema).default([]),
    /** An ongoing condition alerts again after this long. */
    repeat_after: durationSchema.prefault("24h"),
    /** Violations at or above this severity alert; failed and errored drills always do. */
    min_severity: z.enum(["warning", "critical"]).default("critical"),
    /** A drill that could not verify (`error`) alerts once this many consecutive runs ended so. */
    error_after: z.number().int().min(1).default(2),
    /** Severity of a persisting `error` (a failed drill is always critical). */
    error_severity: z.enum(["warning", "critical"]).default("warning"),
    /** Send a "resolved" notice when a condition clears. */
    resolved: z.boolean().default(true),
  })
  .strict();

/** Resolved alerts configuration. */
export type AlertsConfig = z.infer<typeof alertsSchema>;

/** Every webhook of the section: `webhook` (the shorthand) first, then `webhooks`. */
export function alertWebhooks(cfg: AlertsConfig): WebhookConfig[] {
  return [...(cfg.webhook ? [cfg.webhook] : []), ...cfg.webhooks];
}
