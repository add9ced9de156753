/**
 * Sending mail: compose once to raw RFC 5322 bytes, then hand them to SMTP, or to the outbox
 * when SMTP fails (sent by the next run) or when the transport is `file`.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import nodemailer from "nodemailer";
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import { describeError } from "../../util/errors.js";
import { redact } from "../../util/redact.js";
import type { MailConfig } from "./mail-config.js";
import { type Envelope, Outbox } from "./outbox.js";

/** A message to send. */
export interface MailMessage {
  to: string[];
  subject: string;
  text: string;
  html?: string;
  attachments?: Array<{ filename: string; path: string; contentType?: string }>;
  /** Extra header fields (`Auto-Submitted`, …). */
  headers?: Record<string, string>;
  /** Message-ID to use (with angle brackets); nodemailer makes one up otherwise. */
  messageId?: string;
  /** The message this one answers (In-Reply-To). */
  inReplyTo?: string;
  /** The thread it belongs to, oldest first (References). */
  references?: string[];
}

/** What happened to one message. */
export interface SendOutcome {
  /** Handed to the SMTP server, or written by the file transport. */
  delivered: boolean;
  /** Kept in the outbox for the next run. */
  queued: boolean;
  detail: string;
}

/** What flushing the outbox did. */
export interface FlushOutcome {
  sent: number;
  left: number;
  detail: string;
}

/** Sends mail through the configured transport. */
export interface Mailer {
  send(message: MailMessage): Promise<SendOutcome>;
  /** Sends what earlier runs queued; stops at the first failure (the server is still down). */
  flush(): Promise<FlushOutcome>;
}

/** Where the outbox is: `mail.outbox`, else `<reports.dir>/outbox`. */
export function outboxDir(mail: MailConfig, reportsDir: string): string {
  return mail.outbox ?? join(reportsDir, "outbox");
}

/** Composes a message to raw bytes. */
export async function composeRaw(from: string, m: MailMessage): Promise<Buffer> {
  const composer = new MailComposer({
    from,
    to: m.to,
    subject: m.subject,
    text: m.text,
    ...(m.html ? { html: m.html } : {}),
    ...(m.attachments?.length ? { attachments: m.attachments } : {}),
    ...(m.headers ? { headers: m.headers } : {}),
    ...(m.messageId ? { messageId: m.messageId } : {}),
    ...(m.inReplyTo ? { inReplyTo: m.inReplyTo } : {}),
    ...(m.references?.length ? { references: m.references } : {}),
  });
  return composer.compile().build();
}

/** Creates the mailer of a configuration; `configFile` anchors a relative `ca_file`. */
export function createMailer(mail: MailConfig, opts: { reportsDir: string; configFile: string }): Mailer {
  const outbox = new Outbox(outboxDir(mail, opts.reportsDir));
  const smtp = mail.smtp;
  let transport: ReturnType<typeof nodemailer.createTransport> | undefined;
  const transportOf = () => {
    if (!smtp) throw new Error("mail.smtp is not configured");
    if (transport) return transport;
    const ca = smtp.ca_file
      ? readFileSync(
          isAbsolute(smtp.ca_file) ? smtp.ca_file : resolve(dirname(opts.configFile), smtp.ca_file),
        )
      : undefined;
    transport = nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port ?? (smtp.secure ? 465 : 587),
      secure: smtp.secure,
      requireTLS: !smtp.secure && smtp.starttls,
      ignoreTLS: !smtp.secure && !smtp.starttls,
      ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password ?? "" } } : {}),
      ...(ca ? { tls: { ca } } : {}),
      connectionTimeout: smtp.timeout,
      greetingTimeout: smtp.timeout,
      socketTimeout: smtp.timeout,
    });
    return transport;
  };
  const where = smtp ? `${smtp.host}:${smtp.port ?? (smtp.secure ? 465 : 587)}` : "";
  const viaSmtp = async (raw: Buffer, envelope: Envelope) => {
    const info = (await transportOf().sendMail({
      envelope: { from: envelope.from, to: envelope.to },
      raw,
    })) as {
      rejected?: unknown[];
    };
    if (info.rejected?.length) throw new Error(`${where} rejected ${info.rejected.join(", ")}`);
  };

  return {
    async send(message) {
      const envelope = { from: mail.from, to: message.to };
      const raw = await composeRaw(mail.from, message);
      if (mail.transport === "file") {
        return { delivered: true, queued: false, detail: `written to ${outbox.deliverFile(raw)}` };
      }
      try {
        await viaSmtp(raw, envelope);
        return { delivered: true, queued: false, detail: `sent to ${message.to.join(", ")} via ${where}` };
      } catch (err) {
        const why = redact(describeError(err));
        const id = outbox.enqueue(raw, envelope, message.subject, why);
        return {
          delivered: false,
          queued: true,
          detail: `SMTP ${where} failed (${why}); queued as ${id} in ${outbox.dir}`,
        };
      }
    },
    async flush() {
      const pending = outbox.pending();
      if (pending.length === 0 || mail.transport === "file")
        return { sent: 0, left: pending.length, detail: "" };
      let sent = 0;
      for (const q of pending) {
        try {
          await viaSmtp(q.raw, q.meta.envelope);
          outbox.sent(q.meta.id);
          sent++;
        } catch (err) {
          const why = redact(describeError(err));
          outbox.failed(q.meta, why);
          return {
            sent,
            left: pending.length - sent,
            detail: `sent ${sent} queued message(s); ${pending.length - sent} still queued: ${why}`,
          };
        }
      }
      return { sent, left: 0, detail: `sent ${sent} queued message(s) from ${outbox.dir}` };
    },
  };
}
