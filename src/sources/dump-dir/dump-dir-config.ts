/** Configuration of the `dump-dir` source. */
import { existsSync, statSync } from "node:fs";
import { z } from "zod";
import { baseSourceShape, durationSchema } from "../../config/common-schema.js";
import { storeRefSchema } from "../../storage/store-ref.js";

/** A size such as 64m, 2g or 1TiB, resolved to bytes. */
const size = z
  .string()
  .regex(/^\s*\d+(\.\d+)?\s*[kmgt]?(i?b)?\s*$/i, "not a size (e.g. 64m, 2g)")
  .transform((text) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)/i.exec(text);
    const unit = (m?.[2] ?? "").toLowerCase();
    return Math.round(Number(m?.[1] ?? 0) * 1024 ** (unit ? "kmgt".indexOf(unit) + 1 : 0));
  });

const existingDir = z.string().refine((p) => existsSync(p) && statSync(p).isDirectory(), {
  message: "directory does not exist",
});

/** A directory of pg_dump / pg_dumpall output. */
export const dumpDirSourceSchema = z
  .object({
    ...baseSourceShape,
    type: z.literal("dump-dir"),
    /** The directory; with `storage`, the key prefix in that store (e.g. dumps/app/). */
    path: z.string().min(1),
    /** Name of a store under the top-level `storage:` that holds the dumps. */
    storage: storeRefSchema.optional(),
    /** Glob patterns (relative to path) a backup must match; default: the usual dump extensions. */
    include: z.array(z.string()).min(1).optional(),
    exclude: z.array(z.string()).default([]),
    /** Search subdirectories (the rotated `YYYY-MM-DD-daily/<db>.custom` layout). */
    recursive: z.boolean().default(true),
    /** A `pg_dumpall --globals-only` file restored before each dump (roles). */
    globals: z
      .string()
      .refine((p) => existsSync(p), { message: "file does not exist" })
      .optional(),
    /** Parallel jobs of pg_restore for custom and directory dumps. */
    jobs: z.number().int().min(1).max(64).default(2),
    /** The longest line a plain dump may have outside COPY data (a longer one fails the drill). */
    max_line: size.default(256 * 1024 ** 2),
    /** The most a compressed plain dump may decompress to (a decompression bomb fails the drill). */
    max_decompressed: size.default(1024 ** 4),
    /**
     * Schema and data dumps taken apart (`pg_dump --schema-only` and `--data-only`) drilled as one
     * backup: each data dump matching `data` is paired with the dump matching `schema` nearest to
     * it in time, at most `within` apart; schema restored first (pre-data), then the data, then
     * the schema's indexes and constraints (post-data).
     */
    pairs: z
      .array(
        z
          .object({
            schema: z.string().min(1),
            data: z.string().min(1),
            within: durationSchema.prefault("6h"),
          })
          .strict(),
      )
      .default([]),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const dir = cfg.storage ? undefined : existingDir.safeParse(cfg.path);
    if (dir && !dir.success)
      ctx.addIssue({ code: "custom", path: ["path"], message: "directory does not exist" });
  });

/** Resolved dump-dir source configuration. */
export type DumpDirSourceConfig = z.infer<typeof dumpDirSourceSchema>;
