/** Configuration of the `dump-dir` source. */
import { existsSync, statSync } from "node:fs";
import { z } from "zod";
import { baseSourceShape } from "../../config/common-schema.js";

const existingDir = z.string().refine((p) => existsSync(p) && statSync(p).isDirectory(), {
  message: "directory does not exist",
});

/** A directory of pg_dump / pg_dumpall output. */
export const dumpDirSourceSchema = z
  .object({
    ...baseSourceShape,
    type: z.literal("dump-dir"),
    path: existingDir,
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
  })
  .strict();

/** Resolved dump-dir source configuration. */
export type DumpDirSourceConfig = z.infer<typeof dumpDirSourceSchema>;
