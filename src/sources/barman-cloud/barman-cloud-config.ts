/** Configuration of the `barman-cloud` source (CloudNativePG's backups: barman-cloud in a bucket). */
import { z } from "zod";
import { baseSourceShape, durationSchema } from "../../config/common-schema.js";
import { storeRefSchema } from "../../storage/store-ref.js";

/**
 * One barman-cloud server in an object store: `<path>/<server_name>/base/<id>/` holds each
 * backup (backup.info, data.tar[.gz]), `<path>/<server_name>/wals/` its WAL.
 */
export const barmanCloudSourceSchema = z
  .object({
    ...baseSourceShape,
    type: z.literal("barman-cloud"),
    /** Name of a store under the top-level `storage:` (its endpoint, bucket, keys, CA). */
    storage: storeRefSchema,
    /** Key prefix in the bucket (CloudNativePG's destinationPath without s3://bucket/); "" for the root. */
    path: z
      .string()
      .default("")
      .refine((p) => !p.startsWith("/") && !p.includes(".."), {
        message: "a key prefix (no leading /, no ..)",
      }),
    /** barman-cloud's server name (CloudNativePG's serverName; the cluster's name by default). */
    server_name: z.string().regex(/^[A-Za-z0-9._-]+$/, "a server name (letters, digits, . _ -)"),
    /** Superuser of the backed-up cluster the restore connects as before it sets up its own access. */
    superuser: z.string().min(1).default("postgres"),
    /** When a WAL archive that receives nothing new counts as stalled (warning, critical). */
    wal_stall: z
      .object({ warning: durationSchema.prefault("1h"), critical: durationSchema.prefault("6h") })
      .strict()
      .prefault({}),
  })
  .strict();

/** Resolved barman-cloud source configuration. */
export type BarmanCloudSourceConfig = z.infer<typeof barmanCloudSourceSchema>;
