/**
 * End to end: a real `attest audit` of the sample dumps (one good, one truncated) delivers its
 * PDF by mail to a real SMTP peer and alerts a real webhook receiver, all on 127.0.0.1.
 */
import { execFileSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import { type SmtpPeer, startSmtp, startWebhook, type WebhookPeer } from "./report-peers.js";
import { attest, DUMPS, localSandboxes, workspace } from "./support/cli.js";

const peers: Array<SmtpPeer | WebhookPeer> = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const p of peers) await p.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("audit → report, mail and alerts", () => {
  it("mails the PDF of a real audit and alerts on the failed drill", async () => {
    const smtp = await startSmtp();
    const hook = await startWebhook();
    peers.push(smtp, hook);
    const ws = workspace(
      (dir) => `organization: { name: ACME Corp, department: Infrastructure }
sandbox: { runtime: local }
policies: { rpo: 3650d, rto: 30m, verify_every: 7d }
sources:
  - name: good
    type: dump-dir
    path: ${join(DUMPS, "good")}
    include: ["app_20261120T0300.dump"]
  - name: damaged
    type: dump-dir
    path: ${join(DUMPS, "damaged")}
    include: ["app_truncated.dump"]
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
mail:
  transport: smtp
  smtp: { host: 127.0.0.1, port: ${smtp.port}, starttls: false }
  from: attest@acme.test
  to: [dba@acme.test]
alerts:
  email: [oncall@acme.test]
  webhook: { url: "${hook.url}" }
`,
    );
    dirs.push(ws.dir);
    const r = await attest(["audit", "--config", ws.config, "--json"]);
    const run = JSON.parse(r.stdout) as RunResult;
    expect(localSandboxes(run.run.id)).toEqual([]);
    expect(r.code).toBe(1);
    expect(run.status).toBe("fail");
    expect(run.drills.map((d) => [d.source, d.verdict])).toEqual([
      ["good", "pass"],
      ["damaged", "fail"],
    ]);
    expect(run.delivery?.map((d) => [d.channel, d.ok])).toEqual([
      ["pdf", true],
      ["mail", true],
      ["alert-mail", true],
      ["alert-webhook", true],
    ]);

    // the report mail and the alert mail
    expect(smtp.received.map((m) => m.envelope.to)).toEqual([["dba@acme.test"], ["oncall@acme.test"]]);
    const report = smtp.received[0]!.mail;
    expect(report.subject).toMatch(/^\[Attest\] FAIL: audit of ACME Corp - 2 drills \(1 pass, 1 fail\)/);
    const pdf = report.attachments.find((a) => a.contentType === "application/pdf")!;
    const file = join(ws.dir, "mailed.pdf");
    writeFileSync(file, pdf.content);
    const text = execFileSync("pdftotext", [file, "-"], { encoding: "utf8" }).replace(/\s+/g, " ");
    for (const s of [
      "ACME Corp",
      "Backup restore audit",
      "good/app",
      "damaged/app",
      "PASS",
      "FAIL",
      "sales.orders",
      "archive cut off or damaged",
    ]) {
      expect(text).toContain(s);
    }
    const dense = text.replace(/\s+/g, "");
    for (const v of run.violations) expect(dense).toContain(v.message.replace(/\s+/g, "").slice(0, 50));
    expect(existsSync(run.delivery![0]!.detail)).toBe(true);

    // the alert: once, by webhook with a `text` field
    expect(hook.bodies).toHaveLength(1);
    expect(String(hook.bodies[0]!.text)).toContain(
      "[ALERT] CRITICAL damaged/app: restore drill of damaged/app FAILED on app_truncated.dump",
    );
    expect(smtp.received[1]!.mail.text).toContain("[ALERT] CRITICAL damaged/app");

    // a second audit: the same failure is not alerted again
    const again = JSON.parse((await attest(["audit", "--config", ws.config, "--json"])).stdout) as RunResult;
    expect(again.delivery?.find((d) => d.channel === "alerts")?.detail).toContain("nothing new to alert");
    expect(hook.bodies).toHaveLength(1);
  });
});
