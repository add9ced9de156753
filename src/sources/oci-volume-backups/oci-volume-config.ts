/** Configuration of the `oci-volume-backups` source. */
import { existsSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { baseSourceShape, durationSchema } from "../../config/common-schema.js";
import { redact } from "../../util/redact.js";

const existingFile = z.string().refine((p) => existsSync(p) && statSync(p).isFile(), {
  message: "file does not exist",
});
const existingDir = z.string().refine((p) => existsSync(p) && statSync(p).isDirectory(), {
  message: "directory does not exist",
});
const absolutePath = z.string().refine((p) => isAbsolute(p), { message: "must be an absolute path" });
const ocid = (kind: string) =>
  z.string().regex(new RegExp(`^ocid1\\.${kind}\\.`), `an OCID of the form ocid1.${kind}.…`);
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** Defined tags: namespace → key → value. */
const definedTagsSchema = z.record(
  z.string(),
  z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
);

/**
 * How to authenticate: a `~/.oci/config` profile, or explicit API-key fields whose private
 * key is a file (`key_file`) or a `${file:…}` / `${ENV}` reference (`private_key`).
 */
const ociAuthSchema = z
  .object({
    config_file: z.string().optional(),
    profile: z.string().min(1).default("DEFAULT"),
    tenancy: ocid("tenancy").optional(),
    user: ocid("user").optional(),
    fingerprint: z
      .string()
      .regex(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/i, "16 colon-separated hex bytes (as the console shows it)")
      .optional(),
    key_file: existingFile.optional(),
    private_key: z.string().optional(),
    passphrase: z.string().optional(),
    region: z.string().min(1).optional(),
    /** An emulator's URL; production derives the endpoint from the region. */
    endpoint: z
      .string()
      .url()
      .refine((u) => LOOPBACK_HOSTS.has(new URL(u).hostname), {
        message: "only a loopback emulator URL (http://127.0.0.1:PORT) may replace the OCI endpoint",
      })
      .optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    const explicit = o.tenancy || o.user || o.fingerprint || o.key_file || o.private_key;
    const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    if (!explicit) return;
    if (o.config_file)
      issue("config_file", "give either config_file/profile or tenancy/user/fingerprint/key, not both");
    for (const k of ["tenancy", "user", "fingerprint", "region"] as const)
      if (!o[k]) issue(k, `required with explicit API-key authentication`);
    if (!o.key_file === !o.private_key) issue("key_file", "give exactly one of key_file and private_key");
    if (o.private_key !== undefined) {
      if (!o.private_key.includes("-----BEGIN")) issue("private_key", "not a PEM private key");
      // a resolved reference is a registered secret; inline key text is not, and stays out of config files
      else if (redact(o.private_key) === o.private_key)
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the reference syntax, written out for the user
        issue("private_key", 'write a reference ("${file:/path/key.pem}"), never the key itself');
    }
  })
  .transform((o) => {
    if (o.tenancy) return o;
    const file = o.config_file ?? "~/.oci/config";
    return { ...o, config_file: file.startsWith("~/") ? resolve(homedir(), file.slice(2)) : file };
  })
  .refine((o) => !o.config_file || existsSync(o.config_file), {
    path: ["config_file"],
    message: "file does not exist",
  });

/** Where clones are attached and mounted: the verifier instance this process runs on. */
const verifierSchema = z
  .object({
    instance_id: ocid("instance"),
    availability_domain: z.string().min(1),
    /** Compartment of the verifier instance (its attachments live there); default: compartment_id. */
    compartment_id: z
      .string()
      .regex(/^ocid1\.(compartment|tenancy)\./)
      .optional(),
    attach: z.enum(["paravirtualized", "iscsi"]).default("paravirtualized"),
    /** Where OCI's consistent device paths appear (`device` of an attachment names one). */
    device_root: absolutePath.default("/dev/oracleoci"),
    /** Clones are mounted at <mount_root>/<run id>-<n>. */
    mount_root: absolutePath.default("/var/lib/attest/mnt"),
    /** PGDATA relative to the volume's root; default: PG_VERSION at the root or one level down. */
    data_subdir: z
      .string()
      .refine((p) => !isAbsolute(p) && !p.split("/").includes(".."), {
        message: "a path inside the volume (relative, no '..')",
      })
      .optional(),
    /** `mount -o` options; add nouuid for an XFS clone of a volume this host also mounts. */
    mount_options: z.string().default("nodev,nosuid,noexec,noatime"),
    /** How long a new device path may take to appear after ATTACHED. */
    device_timeout: durationSchema.prefault("2m"),
  })
  .strict();

/** Block-volume backups taken by pg_backup_oci (or OCI policies) of one volume holding PGDATA. */
export const ociVolumeBackupsSourceSchema = z
  .object({
    ...baseSourceShape,
    type: z.literal("oci-volume-backups"),
    oci: ociAuthSchema,
    compartment_id: z
      .string()
      .regex(/^ocid1\.(compartment|tenancy)\./, "an OCID of a compartment (or the tenancy)"),
    volume_id: ocid("volume"),
    /** Only backups carrying all of these defined tags. */
    defined_tags: definedTagsSchema.optional(),
    /** Only backups carrying all of these freeform tags. */
    freeform_tags: z.record(z.string(), z.string()).optional(),
    /** Only backups whose display name matches this regular expression. */
    display_name: z
      .string()
      .refine(
        (s) => {
          try {
            new RegExp(s);
            return true;
          } catch {
            return false;
          }
        },
        { message: "not a valid regular expression" },
      )
      .optional(),
    /** Policy: every backup should carry these defined tags; one without is a finding. */
    expect_defined_tags: definedTagsSchema.optional(),
    /** pg_backup_oci's retention_days: an AVAILABLE backup older than this (plus grace) means deletion is not happening. */
    retention_days: z.number().positive().optional(),
    retention_grace: durationSchema.prefault("1d"),
    /** Policy: a FULL backup must exist among the listed ones. */
    require_full: z.boolean().default(false),
    verifier: verifierSchema,
    /** Clones go here; default: compartment_id (a compartment of their own scopes IAM tightly). */
    clone_compartment_id: z
      .string()
      .regex(/^ocid1\.(compartment|tenancy)\./)
      .optional(),
    /** Defined tags put on clones, e.g. for tag-based IAM conditions (docs/oci-iam.md). */
    clone_defined_tags: definedTagsSchema.optional(),
    limits: z
      .object({
        max_concurrent_clones: z.number().int().min(1).max(16).default(1),
        /** GB this source may clone in one run, summed over its drills. */
        max_cloned_gb: z.number().positive().optional(),
        /** Clone creation until AVAILABLE (hydration of large volumes takes a while). */
        clone_timeout: durationSchema.prefault("1h"),
        /** Attach / detach / delete until their end state. */
        lifecycle_timeout: durationSchema.prefault("15m"),
      })
      .strict()
      .prefault({}),
    /** Retries of transient API errors (429, 5xx, network, timeouts). */
    api_retry: z
      .object({
        max_attempts: z.number().int().min(1).max(20).default(8),
        initial_delay: durationSchema.prefault("1s"),
        max_delay: durationSchema.prefault("30s"),
        call_timeout: durationSchema.prefault("60s"),
      })
      .strict()
      .prefault({}),
    /** Kept labels: `<displayName>.backup_label` or `<backup OCID>.backup_label`. */
    backup_labels: absolutePath.pipe(existingDir).optional(),
    /** WAL archive (archive_command's target): with a kept label, archive recovery to the backup's end. */
    wal_archive: existingDir.optional(),
    /** Superuser of the backed-up cluster the restore connects as before it sets up its own access. */
    superuser: z.string().min(1).default("postgres"),
  })
  .strict();

/** Resolved oci-volume-backups source configuration. */
export type OciVolumeBackupsSourceConfig = z.infer<typeof ociVolumeBackupsSourceSchema>;
