/** The whole configuration file's schema. `config.example.yml` documents every key. */
import { z } from "zod";
import { joinObjectStores, unknownObjectStoreIssues } from "../checks/objects-config.js";
import { evidenceSchema } from "../evidence/evidence-config.js";
import { alertsSchema } from "../report/alerts/alerts-config.js";
import { mailSchema } from "../report/mail/mail-config.js";
import { planSchema, refineSchedule, serviceSchema } from "../scheduler/schedule-config.js";
import { barmanSourceSchema } from "../sources/barman/barman-config.js";
import { barmanCloudSourceSchema } from "../sources/barman-cloud/barman-cloud-config.js";
import { basebackupSourceSchema } from "../sources/basebackup/basebackup-config.js";
import { dumpDirSourceSchema } from "../sources/dump-dir/dump-dir-config.js";
import { ociVolumeBackupsSourceSchema } from "../sources/oci-volume-backups/oci-volume-config.js";
import { pgbackrestSourceSchema } from "../sources/pgbackrest/pgbackrest-config.js";
import { storageMapSchema } from "../storage/storage-config.js";
import { joinStoreRefs, unknownStoreIssues } from "../storage/store-ref.js";
import { checksSchema, DEFAULT_POLICIES, durationSchema, policiesSchema } from "./common-schema.js";

export type { ChecksConfig, PoliciesConfig } from "./common-schema.js";

/** Every source type; each adapter owns its schema. */
export const sourceSchema = z.discriminatedUnion("type", [
  dumpDirSourceSchema,
  basebackupSourceSchema,
  barmanSourceSchema,
  ociVolumeBackupsSourceSchema,
  pgbackrestSourceSchema,
  barmanCloudSourceSchema,
]);

/** One resolved source configuration. */
export type SourceConfig = z.infer<typeof sourceSchema>;

/** The source types this build knows. */
export const SOURCE_TYPES = sourceSchema.options.map((o) => o.shape.type.value);

/** A size such as 512m or 2g. */
const sizeSchema = z.string().regex(/^\s*\d+(\.\d+)?\s*[kmgt]?(i?b)?\s*$/i, "not a size (e.g. 512m, 2g)");

const localRuntimeSchema = z
  .object({
    /** Directory with initdb/pg_ctl/postgres of one major; otherwise discovered per major. */
    bin_dir: z.string().optional(),
    /** OS account sandbox processes run as when Attest runs as root: one that owns nothing else. */
    user: z.string().default("attest-sandbox"),
    /** Where sandboxes live; default: the OS temp dir. */
    work_dir: z.string().optional(),
    /** Most processes a sandbox may have at once. */
    max_processes: z.number().int().min(16).default(1024),
    /** Memory of a whole sandbox (e.g. 4g; cgroup), or of each process where no cgroup can be made. */
    memory: sizeSchema.optional(),
  })
  .strict();

const dockerRuntimeSchema = z
  .object({
    image: z.string().default("postgres:{major}"),
    /** none: no network at all (Attest connects through a socket in a bind-mounted directory); host: opt-in, stated in every drill record. */
    network: z.enum(["none", "host"]).default("none"),
    /** Container memory limit, e.g. 512m, 2g (no swap beyond it); unset: half the host's memory. */
    memory: sizeSchema.optional(),
    /** Most processes (tasks) a sandbox container may have at once. */
    max_processes: z.number().int().min(16).default(1024),
    /** Where sandbox directories (socket, data, private input copies) live; default: the OS temp dir. */
    work_dir: z.string().optional(),
    cpus: z.number().positive().optional(),
    /** Data directory on tmpfs: true, or its size (e.g. 4g; a restore past it ends `error`). */
    tmpfs: z.union([z.boolean(), sizeSchema]).default(false),
    /** Pull a missing image from its registry (off by default: drills must not reach out unasked). */
    pull: z.boolean().default(false),
  })
  .strict();

/** Where drills run. */
export const sandboxSchema = z
  .object({
    runtime: z.enum(["local", "docker"]).default("local"),
    local: localRuntimeSchema.default(localRuntimeSchema.parse({})),
    docker: dockerRuntimeSchema.default(dockerRuntimeSchema.parse({})),
    concurrency: z.number().int().min(1).max(16).default(1),
    timeout: durationSchema.prefault("2h"),
    /** `bwrap`: every sandbox process confined (default); `none`: unconfined, stated in every record. */
    confinement: z.enum(["bwrap", "none"]).default("bwrap"),
  })
  .strict();

/** The top-level configuration. */
export const configSchema = z
  .object({
    organization: z
      .object({ name: z.string().default("Attest"), department: z.string().optional() })
      .strict()
      .default({ name: "Attest" }),
    sandbox: sandboxSchema.default(sandboxSchema.parse({})),
    policies: policiesSchema.prefault(DEFAULT_POLICIES),
    checks: checksSchema.optional(),
    /** Named object stores (S3 buckets, local directories) that sources read backups from. */
    storage: storageMapSchema.default({}),
    sources: z.array(sourceSchema).min(1, "at least one source is needed"),
    history: z
      .object({ csv: z.string().default("./reports/history.csv") })
      .strict()
      .default({ csv: "./reports/history.csv" }),
    reports: z
      .object({
        dir: z.string().default("./reports"),
        pdf: z.boolean().default(true),
        json: z.boolean().default(true),
      })
      .strict()
      .default({ dir: "./reports", pdf: true, json: true }),
    mail: mailSchema.optional(),
    alerts: alertsSchema.optional(),
    /** Signed evidence bundles and the frameworks reports map to. */
    evidence: evidenceSchema.optional(),
    /** `attest serve`: cron plans. */
    schedule: z.array(planSchema).default([]),
    /** `attest serve`: endpoint, concurrency, shutdown, lock. */
    service: serviceSchema.default(serviceSchema.parse({})),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    refineSchedule(cfg, ctx);
    for (const issue of unknownStoreIssues(cfg)) ctx.addIssue({ code: "custom", ...issue });
    for (const issue of unknownObjectStoreIssues(cfg)) ctx.addIssue({ code: "custom", ...issue });
    const seen = new Set<string>();
    cfg.sources.forEach((s, i) => {
      if (seen.has(s.name))
        ctx.addIssue({
          code: "custom",
          path: ["sources", i, "name"],
          message: `duplicate source name "${s.name}"`,
        });
      seen.add(s.name);
    });
    if (cfg.alerts?.email.length && !cfg.mail) {
      ctx.addIssue({
        code: "custom",
        path: ["alerts", "email"],
        message: "alert e-mails need a mail: section (transport, from)",
      });
    }
  })
  // a source's `storage: NAME` carries the named store's configuration from here on
  .transform(joinStoreRefs)
  // so does the store an `objects` check names
  .transform(joinObjectStores);

/** The resolved, frozen configuration. */
export type Config = z.infer<typeof configSchema> & { readonly file: string };
