/** Configuration of alerts (`alerts:`): e-mail recipients, a webhook, repetition. */
import { z } from "zod";
import { durationSchema } from "../../config/common-schema.js";

/** The `alerts:` section. */
export const alertsSchema = z
  .object({
    /** Recipients of alert mails (sent through the `mail:` transport). */
    email: z.array(z.string().min(3)).default([]),
    webhook: z
      .object({
        /** Receives a JSON POST with a `text` field (Slack, Teams, Mattermost, …). */
        url: z.string().url(),
        headers: z.record(z.string(), z.string()).default({}),
        timeout: durationSchema.prefault("10s"),
      })
      .strict()
      .optional(),
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
