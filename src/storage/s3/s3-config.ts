/** Configuration of an `s3` store: a bucket of an S3-compatible service (AWS, Ceph RGW, MinIO, …). */
import { existsSync } from "node:fs";
import { z } from "zod";
import { parseDuration } from "../../util/duration.js";

// the config schema imports this file through storage-config.ts: parse durations here directly
const listTimeoutSchema = z
  .string()
  .refine((s) => (parseDuration(s) ?? 0) > 0, { message: "not a duration (use e.g. 90s, 10m)" })
  .transform((s) => parseDuration(s)!);

/** One bucket; keys are object keys in it. */
export const s3StorageSchema = z
  .object({
    type: z.literal("s3"),
    /** The service's URL (https://host:port); omitted: AWS's regional endpoint. */
    endpoint: z.url({ protocol: /^https?$/, error: "not an http(s) URL" }).optional(),
    region: z.string().min(1).default("us-east-1"),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "not an S3 bucket name"),
    /** https://host/bucket/key instead of https://bucket.host/key (MinIO, Ceph RGW). */
    path_style: z.boolean().default(false),
    /** Static keys (use `${ENV}` / `${file:…}`); omitted: the standard AWS credential chain. */
    access_key_id: z.string().min(1).optional(),
    secret_access_key: z.string().min(1).optional(),
    session_token: z.string().min(1).optional(),
    /** A profile of the shared credentials/config files, for the standard chain. */
    profile: z.string().min(1).optional(),
    /** PEM file of the CA(s) that signed the endpoint's certificate (added to the system's). */
    ca_file: z
      .string()
      .refine((p) => existsSync(p), { message: "file does not exist" })
      .optional(),
    /** Attempts per request, with backoff, on 5xx, 429, SlowDown and dropped connections. */
    max_attempts: z.number().int().min(1).max(20).default(5),
    /** Most keys one listing may return: a store that lists more (or lists forever) is refused. */
    max_keys_listed: z.number().int().min(1).default(1_000_000),
    /** Deadline of one whole listing (every page of a prefix); past it the listing fails. */
    list_timeout: listTimeoutSchema.prefault("10m"),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    if (Boolean(cfg.access_key_id) !== Boolean(cfg.secret_access_key)) {
      ctx.addIssue({
        code: "custom",
        path: [cfg.access_key_id ? "secret_access_key" : "access_key_id"],
        message: "access_key_id and secret_access_key go together",
      });
    }
    if (cfg.profile && cfg.access_key_id) {
      ctx.addIssue({
        code: "custom",
        path: ["profile"],
        message: "profile and static keys exclude each other",
      });
    }
  });

/** Resolved S3 store configuration. */
export type S3StorageConfig = z.infer<typeof s3StorageSchema>;
