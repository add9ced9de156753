/** Configuration of the `barman` source. */
import { existsSync, statSync } from "node:fs";
import { z } from "zod";
import { baseSourceShape } from "../../config/common-schema.js";

const existingFile = z.string().refine((p) => existsSync(p) && statSync(p).isFile(), {
  message: "file does not exist",
});

/** One server of a Barman installation, read through the barman CLI (`barman -c CONF …`). */
export const barmanSourceSchema = z
  .object({
    ...baseSourceShape,
    type: z.literal("barman"),
    /** The Barman server name (a section of the configuration). */
    server: z.string().min(1),
    /** The barman.conf to pass with `-c`. */
    config_file: existingFile,
    /** OS user the barman CLI runs as when Attest runs as root (Barman's own barman_user). */
    barman_user: z.string().min(1).default("barman"),
    /** Superuser of the backed-up cluster the restore connects as before it sets up its own access. */
    superuser: z.string().min(1).default("postgres"),
  })
  .strict();

/** Resolved barman source configuration. */
export type BarmanSourceConfig = z.infer<typeof barmanSourceSchema>;
