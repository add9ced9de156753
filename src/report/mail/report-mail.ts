/** The e-mail sent after a run: an HTML summary (plus plain text) with the PDF attached. */
import { basename } from "node:path";
import type { Config } from "../../config/schema.js";
import type { RunResult } from "../../model.js";
import type { SeriesStatus } from "../../policy/series-status.js";
import { formatDuration } from "../../util/duration.js";
import { redact } from "../../util/redact.js";
import { STATUS_WORDS, statusLine } from "../report-model.js";
import type { MailConfig } from "./mail-config.js";
import type { MailMessage } from "./mailer.js";

const COLOR: Record<string, string> = {
  pass: "#2e7d32",
  warn: "#b26a00",
  fail: "#c62828",
  error: "#546e7a",
  critical: "#c62828",
  warning: "#b26a00",
  ok: "#2e7d32",
  "n/a": "#9e9e9e",
  unverified: "#b26a00",
};

/** Escapes text for HTML. */
export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

const cell = (s: string, color?: string, bold = false) =>
  `<td style="padding:4px 8px;border-bottom:1px solid #e0e0e0;vertical-align:top;${color ? `color:${color};` : ""}${bold ? "font-weight:bold;" : ""}">${escapeHtml(s)}</td>`;
const head = (cols: string[]) =>
  `<tr>${cols.map((c) => `<th style="padding:4px 8px;text-align:left;background:#eceff1;border-bottom:1px solid #bdbdbd">${escapeHtml(c)}</th>`).join("")}</tr>`;
const table = (rows: string) =>
  `<table style="border-collapse:collapse;font-size:13px;margin:6px 0 16px">${rows}</table>`;
const name = (source: string, series?: string) => (series ? `${source}/${series}` : source);
const time = (iso?: string) => (iso ? `${iso.slice(0, 16).replace("T", " ")} UTC` : "-");

/** Builds the report mail of a run. */
export function reportMail(
  run: RunResult,
  config: Config & { mail: MailConfig },
  opts: { pdfFile?: string; summary?: readonly SeriesStatus[] } = {},
): MailMessage {
  const org = config.organization.name;
  const counts = statusLine(run.drills, run.violations);
  const subject =
    `${config.mail.subject_prefix} ${run.status.toUpperCase()}: ${run.run.kind} of ${org} - ${counts}`.trim();

  const text: string[] = [
    `${org}${config.organization.department ? ` - ${config.organization.department}` : ""}`,
    `Attest ${run.run.kind} ${run.run.id}${run.run.label ? ` (${run.run.label})` : ""}`,
    `${time(run.run.startedAt)} to ${time(run.run.finishedAt)}`,
    "",
    STATUS_WORDS[run.status],
    counts,
    "",
  ];
  let html = `<div style="font-family:Helvetica,Arial,sans-serif;color:#212121;max-width:900px">`;
  html += `<h2 style="margin:0;color:#1f4e79">${escapeHtml(org)}</h2>`;
  if (config.organization.department)
    html += `<div style="color:#616161">${escapeHtml(config.organization.department)}</div>`;
  html += `<p>Attest ${escapeHtml(run.run.kind)} <code>${escapeHtml(run.run.id)}</code>${run.run.label ? ` (${escapeHtml(run.run.label)})` : ""}, ${escapeHtml(time(run.run.startedAt))} to ${escapeHtml(time(run.run.finishedAt))}</p>`;
  html += `<div style="background:${COLOR[run.status]};color:#fff;padding:10px 14px;font-size:16px"><b>${escapeHtml(run.status.toUpperCase())}</b> &mdash; ${escapeHtml(STATUS_WORDS[run.status].replace(/^\w+ - /, ""))}<br><span style="font-size:13px">${escapeHtml(counts)}</span></div>`;

  if (run.drills.length) {
    text.push("Drills:");
    html += `<h3>Drills</h3>`;
    let rows = head(["Source / series", "Backup", "Verdict", "Time", "Reason"]);
    for (const d of run.drills) {
      text.push(
        `  ${d.verdict.toUpperCase().padEnd(5)} ${name(d.source, d.series)} ${d.backup.id} ${formatDuration(d.timings.totalMs)} - ${d.reason}`,
      );
      rows += `<tr>${cell(name(d.source, d.series))}${cell(d.backup.id)}${cell(d.verdict.toUpperCase(), COLOR[d.verdict], true)}${cell(formatDuration(d.timings.totalMs))}${cell(d.reason)}</tr>`;
    }
    html += table(rows);
    text.push("");
  }

  text.push(run.violations.length ? "Policy violations:" : "No policy violation.");
  html += `<h3>Policy violations</h3>`;
  if (run.violations.length) {
    let rows = head(["Severity", "Rule", "Source / series", "What is wrong"]);
    for (const v of run.violations) {
      text.push(
        `  ${v.severity.toUpperCase().padEnd(8)} ${v.rule} ${name(v.source, v.series)}: ${v.message}`,
      );
      rows += `<tr>${cell(v.severity.toUpperCase(), COLOR[v.severity], true)}${cell(v.rule)}${cell(name(v.source, v.series))}${cell(v.message)}</tr>`;
    }
    html += table(rows);
  } else html += `<p style="color:#2e7d32">No policy violation.</p>`;
  text.push("");

  if (opts.summary?.length) {
    text.push("Per series:");
    html += `<h3>Per source and series</h3>`;
    let rows = head(["Source / series", "Newest backup", "Last verified", "RPO", "RTO", "Retention"]);
    for (const s of opts.summary) {
      const newest =
        s.newestAgeSeconds === undefined ? "none" : `${formatDuration(s.newestAgeSeconds * 1000)} ago`;
      text.push(
        `  ${name(s.source, s.series)}: newest ${newest}, last verified ${time(s.lastVerifiedAt)}, RPO ${s.rpo}, RTO ${s.rto}, retention ${s.retention}`,
      );
      rows += `<tr>${cell(name(s.source, s.series))}${cell(newest)}${cell(s.lastVerifiedAt ? time(s.lastVerifiedAt) : "never", s.lastVerifiedAt ? undefined : COLOR.warn)}${cell(s.rpo.toUpperCase(), COLOR[s.rpo])}${cell(s.rto.toUpperCase(), COLOR[s.rto])}${cell(s.retention.toUpperCase(), COLOR[s.retention])}</tr>`;
    }
    html += table(rows);
    text.push("");
  }

  const attach = Boolean(opts.pdfFile && config.mail.attach_pdf);
  const where = opts.pdfFile
    ? `The full report${attach ? " is attached and" : ""} is kept at ${opts.pdfFile}.`
    : "No PDF report was written for this run.";
  text.push(where);
  html += `<p style="color:#616161;font-size:12px">${escapeHtml(where)}</p></div>`;

  return {
    to: [...config.mail.to],
    subject: redact(subject),
    text: redact(text.join("\n")),
    html: redact(html),
    ...(attach && opts.pdfFile
      ? {
          attachments: [
            { filename: basename(opts.pdfFile), path: opts.pdfFile, contentType: "application/pdf" },
          ],
        }
      : {}),
  };
}
