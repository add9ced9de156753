/** Configuration of `attest serve`: the `schedule:` plans and the `service:` section. */
import { isIP } from "node:net";
import { z } from "zod";
import { durationSchema } from "../config/common-schema.js";
import { validateSchedule } from "./cron-times.js";

/** What a plan runs. */
export const PLAN_KINDS = ["audit", "check", "report"] as const;
/** A plan's kind of run. */
export type PlanKind = (typeof PLAN_KINDS)[number];

/** What happens to a run missed while the service was down. */
export const CATCH_UP_MODES = ["run_once", "skip"] as const;

/** One scheduled plan. */
export const planSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "use letters, digits, '.', '_' and '-' only")
      .max(64),
    cron: z.string().min(1),
    timezone: z.string().min(1).default("UTC"),
    run: z.enum(PLAN_KINDS).default("audit"),
    /** Sources the run covers; empty: every source. */
    sources: z.array(z.string().min(1)).default([]),
    /** Start at a random moment within this window after the fire time (spreads load). */
    start_window: durationSchema.optional(),
    catch_up: z.enum(CATCH_UP_MODES).default("run_once"),
    /** Also run once as soon as the service starts. */
    run_at_start: z.boolean().default(false),
    /** `run: report`: the period the report covers, ending at the fire time. */
    period: durationSchema.prefault("7d"),
  })
  .strict()
  .superRefine((p, ctx) => {
    try {
      validateSchedule({ cron: p.cron, timezone: p.timezone });
    } catch (err) {
      const msg = (err as Error).message;
      ctx.addIssue({
        code: "custom",
        path: [msg.startsWith("unknown time zone") ? "timezone" : "cron"],
        message: msg,
      });
    }
  });

/** One resolved plan. */
export type PlanConfig = z.infer<typeof planSchema>;
/** One plan as written in the file (durations as text). */
export type PlanInput = z.input<typeof planSchema>;

/** A `host:port` the HTTP endpoint listens on. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `127.0.0.1:9187`, `[::1]:9187` or `localhost:9187`. */
export function parseListen(text: string): ListenAddress | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? m[2] ?? "", port };
}

/** Whether a listen host is a loopback address (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

/** The `service:` section. */
export const serviceSchema = z
  .object({
    /** Address of /healthz, /metrics and /runs. */
    listen: z.string().default("127.0.0.1:9187"),
    /** Allow a non-loopback `listen` (put an authenticating proxy in front). */
    allow_remote: z.boolean().default(false),
    /** Scheduled runs at once across all plans (a plan never overlaps itself). */
    max_concurrent_runs: z.number().int().min(1).max(16).default(1),
    /** On SIGTERM: how long running drills get to stop and record before sandboxes are destroyed. */
    shutdown_grace: durationSchema.prefault("60s"),
    /** Lock shared with `attest audit`/`drill`; default: the history file's path + `.lock`. */
    lock_file: z.string().optional(),
    /** How long a scheduled run waits for a lock held by another run. */
    lock_wait: durationSchema.prefault("30m"),
    /** A run lock not renewed for this long may be taken over from any host (a killed pod's). */
    lock_lease: durationSchema.prefault("2m"),
    /** How often the holder renews its lease. */
    lock_renew: durationSchema.prefault("15s"),
    /** Where plan state (last runs, for catch-up) is kept; default: reports.dir. */
    state_dir: z.string().optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.lock_renew * 2 > s.lock_lease)
      ctx.addIssue({
        code: "custom",
        path: ["lock_renew"],
        message: "must be at most half of lock_lease, so that a live holder never looks stale",
      });
    const addr = parseListen(s.listen);
    if (!addr) {
      ctx.addIssue({
        code: "custom",
        path: ["listen"],
        message: `"${s.listen}" is not HOST:PORT (e.g. 127.0.0.1:9187)`,
      });
    } else if (!isLoopbackHost(addr.host) && !s.allow_remote) {
      ctx.addIssue({
        code: "custom",
        path: ["listen"],
        message: `${s.listen} is not a loopback address; set service.allow_remote: true to expose the endpoint`,
      });
    }
  });

/** Resolved service settings. */
export type ServiceConfig = z.infer<typeof serviceSchema>;

/** Cross-checks of `schedule:` against the rest of the config: unique names, known sources. */
export function refineSchedule(
  cfg: { schedule: readonly PlanConfig[]; sources: ReadonlyArray<{ name: string }> },
  ctx: z.RefinementCtx,
): void {
  const known = new Set(cfg.sources.map((s) => s.name));
  const seen = new Set<string>();
  cfg.schedule.forEach((p, i) => {
    if (seen.has(p.name))
      ctx.addIssue({
        code: "custom",
        path: ["schedule", i, "name"],
        message: `duplicate plan name "${p.name}"`,
      });
    seen.add(p.name);
    p.sources.forEach((s, j) => {
      if (!known.has(s))
        ctx.addIssue({
          code: "custom",
          path: ["schedule", i, "sources", j],
          message: `unknown source "${s}" (configured: ${[...known].join(", ")})`,
        });
    });
  });
}
