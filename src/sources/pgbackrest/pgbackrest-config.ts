/** Configuration of the `pgbackrest` source. */
import { existsSync, statSync } from "node:fs";
import { z } from "zod";
import { baseSourceShape } from "../../config/common-schema.js";

const existingDir = z.string().refine((p) => existsSync(p) && statSync(p).isDirectory(), {
  message: "directory does not exist",
});
const existingFile = z.string().refine((p) => existsSync(p) && statSync(p).isFile(), {
  message: "file does not exist",
});

/** A pgBackRest stanza in a posix repository, named by its path or by a pgbackrest.conf. */
export const pgbackrestSourceSchema = z
  .object({
    ...baseSourceShape,
    type: z.literal("pgbackrest"),
    /** The stanza whose backups are listed and restored. */
    stanza: z.string().regex(/^[A-Za-z0-9._-]+$/, "a stanza name (letters, digits, . _ -)"),
    /** repo<N>-path of a posix repository; without config_file no pgbackrest.conf is read. */
    repo_path: existingDir.optional(),
    /** A pgbackrest.conf naming the repository (passed as --config). */
    config_file: existingFile.optional(),
    /** Repository number (the N of repo<N>-path). */
    repo: z.number().int().min(1).max(256).default(1),
    /** Superuser of the backed-up cluster the restore connects as before it sets up its own access. */
    superuser: z.string().min(1).default("postgres"),
    /** Run `pgbackrest verify` during inspection (read-only; skipped when it takes longer). */
    verify: z.boolean().default(true),
    /** Longest `pgbackrest verify` run before it is given up (ms). */
    verify_timeout_ms: z.number().int().min(1000).max(600_000).default(30_000),
  })
  .strict()
  .refine((c) => c.repo_path !== undefined || c.config_file !== undefined, {
    message: "set repo_path (a posix repository) or config_file (a pgbackrest.conf)",
    path: ["repo_path"],
  });

/** Resolved pgbackrest source configuration. */
export type PgbackrestSourceConfig = z.infer<typeof pgbackrestSourceSchema>;
