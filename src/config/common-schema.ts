/** Schema pieces shared by every source type: durations, selection, checks, policies. */
import { z } from "zod";
import { objectsCheckSchema } from "../checks/objects-config.js";
import { storageFreeSchema } from "../policy/storage-free.js";
import { parseDuration } from "../util/duration.js";

/** A duration such as `26h` or `7d`, parsed to milliseconds. */
export const durationSchema = z.string().transform((s, ctx) => {
  const ms = parseDuration(s);
  if (ms === undefined) {
    ctx.addIssue({ code: "custom", message: `"${s}" is not a duration (use e.g. 90s, 30m, 26h, 7d)` });
    return z.NEVER;
  }
  return ms;
});

/** One selection rule: latest | all-new | random:N@WINDOW | random:N@WINDOW+oldest | <backup id>. */
export const selectRuleSchema = z
  .string()
  .min(1)
  .refine((s) => !s.startsWith("random:") || /^random:\d+@\d+[smhdw](\+oldest)?$/.test(s), {
    message: "random selection is written random:N@WINDOW, e.g. random:2@30d",
  });

/** Expectation of a SQL assertion: `> 0`, `= 42`, `between 10 and 20`, `!= 0`, `is null`. */
export const expectSchema = z
  .string()
  .refine(
    (s) =>
      /^\s*((>=|<=|!=|<>|=|>|<)\s*\S.*|between\s+\S+\s+and\s+\S+|is\s+(not\s+)?null|~\s*.+)\s*$/i.test(s),
    {
      message:
        'expect is one of "> N", ">= N", "= V", "!= V", "< N", "<= N", "between A and B", "is null", "is not null", "~ REGEX"',
    },
  );

/** Checks run after a restore. */
export const checksSchema = z
  .object({
    amcheck: z.boolean().default(true),
    full_read: z.boolean().default(true),
    inventory: z
      .object({
        compare: z.boolean().default(true),
        /** Fraction of rows a table may lose against the previous passing drill. */
        row_drop_tolerance: z.number().min(0).max(1).default(0.1),
      })
      .strict()
      .default({ compare: true, row_drop_tolerance: 0.1 }),
    queries: z
      .array(
        z
          .object({
            name: z.string().min(1),
            database: z.string().min(1),
            sql: z.string().min(1),
            expect: expectSchema,
          })
          .strict(),
      )
      .default([]),
    freshness: z
      .object({ database: z.string().min(1), sql: z.string().min(1) })
      .strict()
      .optional(),
    /** Object keys named by a query must exist in a store (files and database restored together). */
    objects: objectsCheckSchema.optional(),
    write: z.boolean().default(true),
  })
  .strict();

/** Resolved checks configuration. */
export type ChecksConfig = z.infer<typeof checksSchema>;

/** Policy targets; defaults at the top of the config, overridable per source. */
export const policiesSchema = z
  .object({
    rpo: durationSchema.optional(),
    rto: durationSchema.optional(),
    verify_every: durationSchema.optional(),
    max_gap: durationSchema.optional(),
    retention: z
      .object({
        min_count: z.number().int().min(0).optional(),
        min_days: z.number().min(0).optional(),
        max_days: z.number().min(0).optional(),
      })
      .strict()
      .optional(),
    size_anomaly: z
      .object({
        enabled: z.boolean().default(true),
        factor: z.number().gt(1).default(3),
        window: z.number().int().min(2).default(7),
      })
      .strict()
      .optional(),
    /** Target for the newest backup proven restorable; default: rpo + verify_every. */
    rpo_verified: durationSchema.optional(),
    /** Warn when the restore-time trend crosses `rto` within `horizon`. */
    rto_forecast: z
      .object({
        enabled: z.boolean().default(true),
        horizon: durationSchema.prefault("90d"),
        min_points: z.number().int().min(2).default(4),
      })
      .strict()
      .optional(),
    /** Warn when the filesystem of a local backup directory runs short of free space. */
    storage_free: storageFreeSchema.optional(),
  })
  .strict();

/** Resolved policy targets (durations in ms). */
export type PoliciesConfig = z.infer<typeof policiesSchema>;

/**
 * The targets of a config without a `policies:` block, the values config.example.yml shows;
 * a written block replaces them whole (`policies: {}` sets no target).
 */
export const DEFAULT_POLICIES = {
  rpo: "26h",
  rto: "30m",
  verify_every: "7d",
  max_gap: "26h",
  retention: { min_count: 7, min_days: 7, max_days: 35 },
} as const satisfies z.input<typeof policiesSchema>;

/** Fields every source type has. */
export const baseSourceShape = {
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "use letters, digits, '.', '_' and '-' only")
    .max(64),
  select: z.union([selectRuleSchema, z.array(selectRuleSchema).min(1)]).default("latest"),
  checks: checksSchema.default(checksSchema.parse({})),
  policies: policiesSchema.optional(),
  /** Per-source sandbox timeout. */
  timeout: durationSchema.optional(),
};
