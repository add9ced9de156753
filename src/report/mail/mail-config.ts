/** Configuration of e-mail delivery (`mail:`): SMTP or .eml files in an outbox. */
import { z } from "zod";
import { durationSchema } from "../../config/common-schema.js";

/** An SMTP server: implicit TLS (`secure`), or STARTTLS required (`starttls`), or plain. */
export const smtpSchema = z
  .object({
    host: z.string().min(1),
    /** Default: 465 with `secure`, else 587. */
    port: z.number().int().min(1).max(65535).optional(),
    /** TLS from the first byte (port 465). */
    secure: z.boolean().default(false),
    /** Require STARTTLS before authenticating; `false` never upgrades (trusted relays only). */
    starttls: z.boolean().default(true),
    user: z.string().optional(),
    /** Use a `${ENV}` or `${file:…}` reference. */
    password: z.string().optional(),
    /** PEM file of the CA that signed the server's certificate; relative to the config file. */
    ca_file: z.string().optional(),
    timeout: durationSchema.prefault("30s"),
  })
  .strict();

/** The `mail:` section. */
export const mailSchema = z
  .object({
    transport: z.enum(["smtp", "file"]).default("smtp"),
    smtp: smtpSchema.optional(),
    from: z.string().min(3),
    to: z.array(z.string().min(3)).default([]),
    /** Where `transport: file` writes .eml files and where unsent mail waits; default: <reports.dir>/outbox. */
    outbox: z.string().optional(),
    subject_prefix: z.string().default("[Attest]"),
    attach_pdf: z.boolean().default(true),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.transport === "smtp" && !m.smtp) {
      ctx.addIssue({
        code: "custom",
        path: ["smtp"],
        message: "transport smtp needs smtp: { host, port, … }",
      });
    }
  });

/** Resolved mail configuration. */
export type MailConfig = z.infer<typeof mailSchema>;
