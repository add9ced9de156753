/** Configuration of the `basebackup` source. */
import { existsSync, statSync } from "node:fs";
import { z } from "zod";
import { baseSourceShape, durationSchema } from "../../config/common-schema.js";
import { storeRefSchema } from "../../storage/store-ref.js";
import { isValidSegmentSize } from "../../wal/wal-names.js";

const existingDir = z.string().refine((p) => existsSync(p) && statSync(p).isDirectory(), {
  message: "directory does not exist",
});

const stallSchema = z
  .object({
    /** Age of the newest archived segment that earns a warning. */
    warning: durationSchema.prefault("1h"),
    /** … and a critical finding. */
    critical: durationSchema.prefault("6h"),
  })
  .strict();

const keyPrefix = z.string().refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), {
  message: "a key prefix (no leading /, no ..)",
});

/**
 * pg_basebackup output (one backup per subdirectory) plus the WAL archive archive_command writes;
 * with `storage`, both are key prefixes in that store (`base/<id>/base.tar.gz`, `wal/<segment>`).
 */
export const basebackupSourceSchema = z
  .object({
    ...baseSourceShape,
    type: z.literal("basebackup"),
    /** Directory with one pg_basebackup output (plain or tar) per subdirectory; with `storage`, a key prefix. */
    path: z.string().min(1),
    /** Directory archive_command writes (plain or .gz/.lz4/.zst segments, .history, .partial); with `storage`, a key prefix. */
    wal_archive: z.string().min(1).optional(),
    /** Name of a store under the top-level `storage:` that holds the backups and the WAL. */
    storage: storeRefSchema.optional(),
    /** Segment size to assume when no segment header is readable (bytes). */
    wal_segment_size: z
      .number()
      .int()
      .refine(isValidSegmentSize, { message: "a power of two between 1 MiB and 1 GiB, in bytes" })
      .optional(),
    /** Superuser of the backed-up cluster the restore connects as before it sets up its own access. */
    superuser: z.string().min(1).default("postgres"),
    /** When a WAL archive that receives nothing new counts as stalled. */
    wal_stall: stallSchema.prefault({}),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const check = cfg.storage ? keyPrefix : existingDir;
    const issue = cfg.storage ? "a key prefix (no leading /, no ..)" : "directory does not exist";
    if (!check.safeParse(cfg.path).success) ctx.addIssue({ code: "custom", path: ["path"], message: issue });
    if (cfg.wal_archive !== undefined && !check.safeParse(cfg.wal_archive).success)
      ctx.addIssue({ code: "custom", path: ["wal_archive"], message: issue });
  });

/** Resolved basebackup source configuration. */
export type BasebackupSourceConfig = z.infer<typeof basebackupSourceSchema>;
