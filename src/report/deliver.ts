/** After a run: write reports, send mail and alerts. Failures are records, never exceptions. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { SourceInventory } from "../audit/inventory.js";
import type { Config } from "../config/schema.js";
import { HistoryStore } from "../history/history-store.js";
import type { RunResult } from "../model.js";
import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { sendAlerts } from "./alerts/send-alerts.js";
import { auditModel } from "./audit-model.js";
import type { Mailer } from "./mail/mailer.js";
import { reportMail } from "./mail/report-mail.js";
import type { ReportModel } from "./report-model.js";

/** What delivery needs. */
export interface DeliverContext {
  config: Config;
  logger: Logger;
  /** Head hash of the history chain after this run's rows were appended. */
  historyHead: string;
  /** `--no-mail`: no e-mail at all (report and alert mail); webhooks still fire. */
  mail: boolean;
  /**
   * The sources the run listed. They give the report its backup inventory (newest backups,
   * timelines) and tell alerting which sources were evaluated, so only their conditions clear.
   */
  inventories?: readonly SourceInventory[];
  /** `false` skips alerts (e.g. a rehearsal); default true. */
  alerts?: boolean;
  /** The clock (tests). */
  now?: () => Date;
}

/** One channel's outcome. */
type Delivery = NonNullable<RunResult["delivery"]>[number];

/** Where a run's PDF goes: `<reports.dir>/pdf/attest-<kind>-<run id>.pdf`. */
export function reportPdfPath(reportsDir: string, run: RunResult): string {
  const safe = run.run.id.replace(/[^A-Za-z0-9._-]+/g, "_");
  return join(reportsDir, "pdf", `attest-${run.run.kind}-${safe}.pdf`);
}

/** Writes the PDF report, e-mails it and sends alerts; returns what happened per channel. */
export async function deliver(
  run: RunResult,
  ctx: DeliverContext,
): Promise<NonNullable<RunResult["delivery"]>> {
  const { config, logger } = ctx;
  const now = ctx.now ?? (() => new Date());
  const out: Delivery[] = [];
  const record = (d: Delivery) => {
    out.push(d);
    if (!d.ok) logger.warn(`delivery ${d.channel} failed`, { detail: d.detail });
  };

  let model: ReportModel | undefined;
  let pdfFile: string | undefined;
  try {
    const store = new HistoryStore(config.history.csv);
    const chain = store.verify();
    model = auditModel({
      run,
      config,
      history: chain.ok ? store.read() : safeRead(store),
      chain,
      ...(ctx.inventories ? { inventories: ctx.inventories } : {}),
    });
  } catch (err) {
    record({ channel: "pdf", ok: false, detail: `report data: ${describeError(err)}` });
  }
  if (model && config.reports.pdf) {
    const file = reportPdfPath(config.reports.dir, run);
    try {
      mkdirSync(join(config.reports.dir, "pdf"), { recursive: true });
      // pdfkit takes a noticeable part of a second to load: only a run that writes a PDF pays it
      const { renderReport } = await import("./pdf/render-report.js");
      await renderReport(model, file);
      pdfFile = file;
      record({ channel: "pdf", ok: true, detail: file });
    } catch (err) {
      record({ channel: "pdf", ok: false, detail: `cannot write ${file}: ${describeError(err)}` });
    }
  }

  let mailer: Mailer | undefined;
  if (config.mail && ctx.mail) {
    const mail = config.mail;
    // nodemailer likewise: loaded only when mail is configured and wanted
    const { createMailer } = await import("./mail/mailer.js");
    mailer = createMailer(mail, { reportsDir: config.reports.dir, configFile: config.file });
    try {
      const flushed = await mailer.flush();
      if (flushed.sent > 0 || flushed.left > 0)
        record({ channel: "mail-outbox", ok: flushed.left === 0, detail: flushed.detail });
    } catch (err) {
      record({ channel: "mail-outbox", ok: false, detail: describeError(err) });
    }
    if (mail.to.length > 0) {
      try {
        const message = reportMail(
          run,
          { ...config, mail },
          { ...(pdfFile ? { pdfFile } : {}), ...(model ? { summary: model.summary } : {}) },
        );
        const res = await mailer.send(message);
        record({ channel: "mail", ok: res.delivered, detail: res.detail });
      } catch (err) {
        record({ channel: "mail", ok: false, detail: describeError(err) });
      }
    }
  }

  if (config.alerts && ctx.alerts !== false) {
    const alerts = config.alerts;
    try {
      for (const d of await sendAlerts(run, {
        config: { ...config, alerts },
        ...(mailer ? { mailer } : {}),
        scope: scopeOf(run, ctx),
        now: now(),
        logger,
      }))
        record(d);
    } catch (err) {
      record({ channel: "alerts", ok: false, detail: describeError(err) });
    }
  }
  return out;
}

/** The sources a run evaluated: those it listed, else those it names. */
function scopeOf(run: RunResult, ctx: DeliverContext): Set<string> {
  if (ctx.inventories) return new Set(ctx.inventories.filter((i) => !i.error).map((i) => i.config.name));
  const failed = new Set((run.findings ?? []).filter((f) => f.kind === "list_failed").map((f) => f.source));
  return new Set(
    [...run.drills, ...run.violations, ...(run.findings ?? [])]
      .map((x) => x.source)
      .filter((s) => !failed.has(s)),
  );
}

/** Rows of a broken chain are still shown (the cover says it is broken), unless unreadable. */
function safeRead(store: HistoryStore) {
  try {
    return store.read();
  } catch {
    return [];
  }
}
