/** The PDF report: rendered by pdfkit, read back with pdftotext (poppler). */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { auditModel } from "../src/report/audit-model.js";
import { exportModel } from "../src/report/export-model.js";
import { renderReport } from "../src/report/pdf/render-report.js";
import { DAY, NOW } from "./report-fixtures.js";
import { sampleRun, sampleWorkspace } from "./report-sample.js";

const pdftotext = (file: string) => execFileSync("pdftotext", [file, "-"], { encoding: "utf8" });
const keep = (file: string) => {
  // ATTEST_KEEP_PDF=DIR keeps rendered files to look at them
  const dir = process.env.ATTEST_KEEP_PDF;
  if (dir) {
    mkdirSync(dir, { recursive: true });
    copyFileSync(file, join(dir, file.split("/").pop()!));
  }
};

describe("audit PDF", () => {
  it("shows cover, summary, violations, charts, a page per drill and the chain head", async () => {
    const ws = sampleWorkspace();
    const { run, head, inventories, store } = sampleRun(ws.config, NOW);
    const model = auditModel({
      run,
      config: ws.config,
      history: store.read(),
      chain: store.verify(),
      inventories,
    });
    const file = join(ws.dir, "audit.pdf");
    await renderReport(model, file);
    keep(file);
    const text = pdftotext(file);
    const flat = text.replace(/\s+/g, " ");
    expect(flat).toContain("ACME Corp");
    expect(flat).toContain("Infrastructure & Data");
    expect(flat).toContain("Backup restore audit");
    expect(flat).toContain("FAIL");
    for (const s of ["app-dumps/app", "app-dumps/billing", "crm-dumps/crm"]) expect(flat).toContain(s);
    expect(flat).toContain(head);
    expect(flat).toContain("intact: 12 rows verified".replace("12", String(store.read().length)));
    expect(flat).toContain("Drill 1 of 2: app-dumps/app");
    expect(flat).toContain("Drill 2 of 2: crm-dumps/crm");
    expect(flat).toContain("public.table_31");
    expect(flat).toContain("pg_restore exited with code 1");
    // every violation message is in the PDF (table cells wrap, so compare without spaces)
    const dense = text.replace(/\s+/g, "");
    for (const v of run.violations) expect(dense).toContain(v.message.replace(/\s+/g, "").slice(0, 60));
    expect(run.violations.some((v) => v.rule === "retention" && v.severity === "critical")).toBe(true);
    expect(flat).toContain("RTO target 30m");
  });

  it("paginates long tables without overflowing pages", async () => {
    const ws = sampleWorkspace();
    const { run, store, inventories } = sampleRun(ws.config, NOW);
    const many = Array.from({ length: 120 }, (_, i) => ({
      ...run.violations[0]!,
      series: `db_${i}`,
      message: `violation number ${i} with a long explanation that wraps over more than one line in the table cell of the report, to test pagination`,
    }));
    // a reason far longer than a page and a path with no space to break at
    const drills = run.drills.map((d, i) =>
      i === 1
        ? {
            ...d,
            reason: `pg_restore failed: ${"error: invalid byte sequence; ".repeat(150)}END-OF-REASON`,
            backup: {
              ...d.backup,
              location: `/backup/${"deeply_nested_directory_name".repeat(12)}/crm.dump`,
            },
          }
        : d,
    );
    const model = auditModel({
      run: { ...run, drills, violations: many },
      config: ws.config,
      history: store.read(),
      chain: store.verify(),
      inventories,
    });
    const file = join(ws.dir, "long.pdf");
    await renderReport(model, file);
    keep(file);
    const text = pdftotext(file);
    for (const i of [0, 59, 119]) expect(text).toContain(`violation number ${i} `);
    const pages = text.split("\f").filter((p) => p.trim());
    expect(pages.length).toBeGreaterThan(5);
    // every page carries its footer: nothing pushed it off
    for (const [i, p] of pages.entries()) expect(p).toContain(`page ${i + 1} of ${pages.length}`);
  });
});

describe("export PDF", () => {
  it("is built from history alone and states a broken chain on the cover", async () => {
    const ws = sampleWorkspace();
    const { store } = sampleRun(ws.config, NOW);
    // tamper with a row
    const csv = ws.config.history.csv;
    const { readFileSync } = await import("node:fs");
    writeFileSync(csv, readFileSync(csv, "utf8").replace('"past-5"', '"past-X"'));
    const chain = store.verify();
    expect(chain.ok).toBe(false);
    const model = exportModel({
      config: ws.config,
      history: store.read(),
      chain,
      from: new Date(NOW.getTime() - 30 * DAY),
      to: NOW,
      now: NOW,
    });
    const file = join(ws.dir, "export.pdf");
    await renderReport(model, file);
    keep(file);
    const flat = pdftotext(file).replace(/\s+/g, " ");
    expect(flat).toContain("Backup compliance report");
    expect(flat).toContain("BROKEN");
    expect(flat).toContain("Verification coverage");
    expect(flat).toContain("Drills in the period");
    expect(existsSync(file)).toBe(true);
  });
});
