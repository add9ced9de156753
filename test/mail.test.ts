/** Report e-mail through a real SMTP peer (smtp-server), read back with mailparser and pdftotext. */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { simpleParser } from "mailparser";
import { afterEach, describe, expect, it } from "vitest";
import { deliver } from "../src/report/deliver.js";
import { silentLogger } from "../src/util/log.js";
import { freeLoopbackPort } from "../src/util/net.js";
import { NOW } from "./report-fixtures.js";
import { type SmtpPeer, selfSignedCert, startSmtp } from "./report-peers.js";
import { sampleRun, sampleWorkspace } from "./report-sample.js";

const peers: SmtpPeer[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) await p.close();
});

const mailYaml = (port: number, extra = "") => `mail:
  transport: smtp
  smtp: { host: 127.0.0.1, port: ${port}, starttls: false, timeout: 10s }
  from: attest@acme.test
  to: [dba@acme.test, audit@acme.test]
${extra}`;

const pdfText = (pdf: Buffer, dir: string) => {
  const file = join(dir, "attached.pdf");
  writeFileSync(file, pdf);
  return execFileSync("pdftotext", [file, "-"], { encoding: "utf8" }).replace(/\s+/g, " ");
};

describe("report e-mail", () => {
  it("sends an HTML summary with the PDF attached to every recipient", async () => {
    const smtp = await startSmtp();
    peers.push(smtp);
    const ws = sampleWorkspace(mailYaml(smtp.port));
    const { run, head, inventories } = sampleRun(ws.config, NOW);
    const delivery = await deliver(run, {
      config: ws.config,
      logger: silentLogger,
      historyHead: head,
      mail: true,
      inventories,
    });

    expect(delivery.map((d) => [d.channel, d.ok])).toEqual([
      ["pdf", true],
      ["mail", true],
    ]);
    expect(smtp.received).toHaveLength(1);
    const got = smtp.received[0]!;
    expect(got.envelope).toEqual({ from: "attest@acme.test", to: ["dba@acme.test", "audit@acme.test"] });
    // crm-dumps/crm, never verified although older than verify_every, is one of the critical ones
    expect(got.mail.subject).toBe(
      `[Attest] FAIL: audit of ACME Corp - ${"2 drills (1 pass, 1 fail)"}; ${run.violations.length} violations (3 critical, ${run.violations.length - 3} warnings)`,
    );
    const html = got.mail.html || "";
    expect(html).toContain("crm-dumps/crm");
    expect(html).toContain("pg_restore exited with code 1");
    expect(got.mail.text).toContain("FAIL");

    const pdf = got.mail.attachments.find((a) => a.contentType === "application/pdf");
    expect(pdf?.filename).toBe(`attest-audit-${run.run.id}.pdf`);
    const text = pdfText(pdf!.content, ws.dir);
    for (const s of [
      "ACME Corp",
      "app-dumps/app",
      "app-dumps/billing",
      "crm-dumps/crm",
      "FAIL",
      "PASS",
      head,
    ])
      expect(text).toContain(s);
    const dense = text.replace(/\s+/g, "");
    for (const v of run.violations) expect(dense).toContain(v.message.replace(/\s+/g, "").slice(0, 50));
    // the report also stays on disk
    expect(existsSync(delivery[0]!.detail)).toBe(true);
  });

  it("uses STARTTLS and authenticates with a password from an environment reference", async () => {
    const tls = selfSignedCert();
    const smtp = await startSmtp({ tls, users: { attest: "s3cret-smtp-pass" } });
    peers.push(smtp);
    const yaml = `mail:
  transport: smtp
  smtp: { host: 127.0.0.1, port: ${smtp.port}, starttls: true, user: attest, password: "\${SMTP_PASSWORD}", ca_file: ${tls.certFile} }
  from: attest@acme.test
  to: [dba@acme.test]
`;
    const ws = sampleWorkspace(yaml, { SMTP_PASSWORD: "s3cret-smtp-pass" });
    const { run, head } = sampleRun(ws.config, NOW);
    const delivery = await deliver(run, {
      config: ws.config,
      logger: silentLogger,
      historyHead: head,
      mail: true,
    });
    expect(delivery.find((d) => d.channel === "mail")).toMatchObject({ ok: true });
    expect(smtp.received).toHaveLength(1);
    expect(smtp.received[0]).toMatchObject({ secure: true, user: "attest" });
  });

  it("a wrong password queues the mail and never shows the password", async () => {
    const tls = selfSignedCert();
    const smtp = await startSmtp({ tls, users: { attest: "the-right-one" } });
    peers.push(smtp);
    const yaml = `mail:
  transport: smtp
  smtp: { host: 127.0.0.1, port: ${smtp.port}, user: attest, password: "\${SMTP_PASSWORD}", ca_file: ${tls.certFile} }
  from: attest@acme.test
  to: [dba@acme.test]
`;
    const ws = sampleWorkspace(yaml, { SMTP_PASSWORD: "wrong-pass-1234" });
    const { run, head } = sampleRun(ws.config, NOW);
    const delivery = await deliver(run, {
      config: ws.config,
      logger: silentLogger,
      historyHead: head,
      mail: true,
    });
    const mail = delivery.find((d) => d.channel === "mail")!;
    expect(mail.ok).toBe(false);
    expect(mail.detail).toMatch(/Invalid username or password|535/);
    expect(JSON.stringify(delivery)).not.toContain("wrong-pass-1234");
    expect(smtp.received).toHaveLength(0);
  });

  it("SMTP refusing: the report stays on disk, the mail waits in the outbox and goes with the next run", async () => {
    const smtp = await startSmtp();
    peers.push(smtp);
    smtp.mode = "refuse";
    const ws = sampleWorkspace(mailYaml(smtp.port));
    const first = sampleRun(ws.config, NOW, { runId: "run-one" });
    const statusBefore = first.run.status;
    const d1 = await deliver(first.run, {
      config: ws.config,
      logger: silentLogger,
      historyHead: first.head,
      mail: true,
    });
    expect(first.run.status).toBe(statusBefore);
    const m1 = d1.find((d) => d.channel === "mail")!;
    expect(m1.ok).toBe(false);
    expect(m1.detail).toContain("451");
    expect(m1.detail).toContain("queued as");
    const pending = join(ws.config.reports.dir, "outbox", "pending");
    expect(readdirSync(pending).filter((f) => f.endsWith(".eml"))).toHaveLength(1);
    expect(existsSync(d1.find((d) => d.channel === "pdf")!.detail)).toBe(true);
    expect(smtp.received).toHaveLength(0);

    // the next run: the server accepts again
    smtp.mode = "accept";
    const second = sampleRun(ws.config, new Date(NOW.getTime() + 3_600_000), { runId: "run-two" });
    const d2 = await deliver(second.run, {
      config: ws.config,
      logger: silentLogger,
      historyHead: second.head,
      mail: true,
    });
    expect(d2.find((d) => d.channel === "mail-outbox")).toMatchObject({ ok: true });
    expect(d2.find((d) => d.channel === "mail")).toMatchObject({ ok: true });
    expect(smtp.received.map((r) => r.mail.attachments[0]?.filename)).toEqual([
      "attest-audit-run-one.pdf",
      "attest-audit-run-two.pdf",
    ]);
    expect(readdirSync(pending)).toEqual([]);
  });

  it("SMTP down (nothing listening): queued, with the reason", async () => {
    const port = await freeLoopbackPort();
    const ws = sampleWorkspace(mailYaml(port));
    const { run, head } = sampleRun(ws.config, NOW);
    const delivery = await deliver(run, {
      config: ws.config,
      logger: silentLogger,
      historyHead: head,
      mail: true,
    });
    const mail = delivery.find((d) => d.channel === "mail")!;
    expect(mail.ok).toBe(false);
    expect(mail.detail).toContain("ECONNREFUSED");
    expect(
      readdirSync(join(ws.config.reports.dir, "outbox", "pending")).filter((f) => f.endsWith(".json")),
    ).toHaveLength(1);
  });

  it("transport file writes a complete .eml to the outbox (air-gapped sites)", async () => {
    const ws = sampleWorkspace(`mail:
  transport: file
  from: attest@acme.test
  to: [dba@acme.test]
  outbox: ./spool
`);
    const { run, head } = sampleRun(ws.config, NOW);
    const delivery = await deliver(run, {
      config: ws.config,
      logger: silentLogger,
      historyHead: head,
      mail: true,
    });
    expect(delivery.find((d) => d.channel === "mail")).toMatchObject({ ok: true });
    const files = readdirSync(join(ws.dir, "spool")).filter((f) => f.endsWith(".eml"));
    expect(files).toHaveLength(1);
    const parsed = await simpleParser(readFileSync(join(ws.dir, "spool", files[0]!)));
    expect(parsed.subject).toContain("[Attest] FAIL");
    expect(parsed.attachments[0]?.contentType).toBe("application/pdf");
  });

  it("--no-mail sends nothing", async () => {
    const smtp = await startSmtp();
    peers.push(smtp);
    const ws = sampleWorkspace(mailYaml(smtp.port));
    const { run, head } = sampleRun(ws.config, NOW);
    const delivery = await deliver(run, {
      config: ws.config,
      logger: silentLogger,
      historyHead: head,
      mail: false,
    });
    expect(delivery.map((d) => d.channel)).toEqual(["pdf"]);
    expect(smtp.received).toHaveLength(0);
  });
});
