/**
 * One alert mail per event, threaded per condition: the subject names the source, series and
 * verdict; every mail of a (source, series, rule) carries the same thread root in References,
 * so a mail client shows a condition's alert, reminders and resolution as one conversation.
 */
import { createHash } from "node:crypto";
import { verdictWords } from "../../policy/drill-outcome.js";
import type { MailMessage } from "../mail/mailer.js";
import type { AlertEvent } from "./alert-plan.js";
import type { AlertCondition } from "./alert-state.js";

const TAG = { new: "ALERT", repeat: "STILL", resolved: "RESOLVED" } as const;

/** What a condition is, in a few words: "backup failed (FAIL)", "rpo critical", … */
export function conditionWords(c: AlertCondition): string {
  if (c.key.startsWith("drill-error:")) return verdictWords("error");
  if (c.kind === "drill") return verdictWords("fail");
  if (c.kind === "finding") return "could not list backups";
  return `${c.rule ?? "policy"} violated (${c.severity.toUpperCase()})`;
}

/** `[ALERT] CRITICAL crm-dumps/crm: backup failed (FAIL)`. */
export function alertSubject(e: AlertEvent): string {
  const c = e.condition;
  const where = c.series ? `${c.source}/${c.series}` : c.source;
  const sev = e.type === "resolved" ? "" : `${c.severity.toUpperCase()} `;
  return `${TAG[e.type]} ${sev}${where}: ${conditionWords(c)}`;
}

const digest = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 24);

/** The domain of message ids: the sender's, so ids are unique to this installation. */
function domainOf(from: string): string {
  const m = /@([A-Za-z0-9.-]+)>?\s*$/.exec(from);
  return m ? m[1]! : "attest.invalid";
}

/** The thread root of a condition (stable per organization, source, series and rule). */
export function threadId(org: string, c: AlertCondition, from: string): string {
  return `<attest.${digest(`${org}\0${c.key}`)}@${domainOf(from)}>`;
}

/** The Message-ID of a condition's first alert (stable for as long as the condition stays open). */
export function openingId(org: string, c: AlertCondition, from: string): string {
  return `<attest.${digest(`${org}\0${c.key}\0${c.firstSeen}`)}@${domainOf(from)}>`;
}

/** The mail for one event. */
export function alertMail(
  e: AlertEvent,
  ctx: { org: string; from: string; to: string[]; prefix: string; body: string; now: Date },
): MailMessage {
  const c = e.condition;
  const root = threadId(ctx.org, c, ctx.from);
  const opening = openingId(ctx.org, c, ctx.from);
  const own =
    e.type === "new"
      ? opening
      : `<attest.${digest(`${ctx.org}\0${c.key}\0${e.type}\0${ctx.now.toISOString()}`)}@${domainOf(ctx.from)}>`;
  return {
    to: ctx.to,
    subject: `${ctx.prefix} ${alertSubject(e)}`,
    text: ctx.body,
    // RFC 3834: machine-sent, so auto-responders and vacation replies stay quiet
    headers: { "Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All" },
    messageId: own,
    ...(e.type === "new"
      ? { inReplyTo: root, references: [root] }
      : { inReplyTo: opening, references: [root, opening] }),
  };
}
