/**
 * Signed evidence bundles: exported from the history and reports of real `attest audit` runs,
 * verified offline with only the archive and the public key, then tampered part by part and
 * refused with the reason that names the part.
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  contentHash,
  ed25519PublicKey,
  HISTORY_FILE,
  MANIFEST_FILE,
  type Manifest,
  SIGNATURE_FILE,
  sha256,
  signManifest,
} from "../src/evidence/bundle-manifest.js";
import { checkSlice, parseSliceCsv, sliceCsv, sliceHistory } from "../src/evidence/history-slice.js";
import { type ArchiveEntry, readTarGz, writeTarGz } from "../src/evidence/tar-archive.js";
import { verifyBundle } from "../src/evidence/verify-bundle.js";
import { type HistoryRecord, recordsOfRun } from "../src/history/history-record.js";
import { HistoryStore, rowHash } from "../src/history/history-store.js";
import type { RunResult } from "../src/model.js";
import { backup, DAY, drill, NOW } from "./report-fixtures.js";
import { attest, DUMPS, localSandboxes, workspace } from "./support/cli.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const pem = (k: KeyObject, type: "pkcs8" | "spki") => k.export({ type, format: "pem" }).toString();

/** A workspace whose config signs bundles with a fresh key; returns where its public key is. */
function signedWorkspace() {
  const keys = generateKeyPairSync("ed25519");
  const ws = workspace(
    (dir) => `organization: { name: ACME Corp }
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
evidence: { signing_key: "\${file:${dir}/keys/attest-ed25519.pem}" }
`,
  );
  dirs.push(ws.dir);
  mkdirSync(join(ws.dir, "keys"));
  writeFileSync(join(ws.dir, "keys", "attest-ed25519.pem"), pem(keys.privateKey, "pkcs8"), { mode: 0o600 });
  const publicKey = join(ws.dir, "attest-ed25519.pub.pem");
  writeFileSync(publicKey, pem(keys.publicKey, "spki"));
  return { ...ws, publicKey, keys };
}

/** Rewrites an archive: `change` edits the entries, then the manifest is re-signed with `key` if given. */
function rewrite(
  archive: Buffer,
  change: (files: Map<string, Buffer>) => void,
  resignWith?: KeyObject,
): Buffer {
  const files = new Map(readTarGz(archive).map((e) => [e.path, e.data]));
  change(files);
  if (resignWith) {
    const manifest = JSON.parse(files.get(MANIFEST_FILE)!.toString()) as Manifest;
    manifest.files = manifest.files.map((f) => {
      const data = files.get(f.path)!;
      return { ...f, sha256: sha256(data), bytes: data.length };
    });
    manifest.contentSha256 = contentHash(manifest.files);
    const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
    files.set(MANIFEST_FILE, bytes);
    files.set(SIGNATURE_FILE, Buffer.from(signManifest(bytes, resignWith)));
  }
  const entries: ArchiveEntry[] = [...files].map(([path, data]) => ({ path, data }));
  return writeTarGz(entries, 0);
}

/** The UTC days the audits of the bundle's period ran on (a run may cross midnight). */
const period = { from: "", to: "" };

describe("attest evidence export / verify", () => {
  let ws: ReturnType<typeof signedWorkspace>;
  let bundle: string;
  let archive: Buffer;

  beforeAll(async () => {
    ws = signedWorkspace();
    // two real audits: one drill passes, one fails, each run writes its document, evidence and PDF
    for (let i = 0; i < 2; i++) {
      const r = await attest(["audit", "--config", ws.config, "--json"]);
      expect(r.stdout, r.stderr).not.toBe("");
      const run = JSON.parse(r.stdout) as RunResult;
      // the period is the days the runs' rows carry, not "today" read again later, which differs
      // from them when the suite crosses midnight UTC
      period.from ||= run.run.startedAt.slice(0, 10);
      period.to = run.run.finishedAt.slice(0, 10);
      expect(localSandboxes(run.run.id)).toEqual([]);
      expect(run.drills.map((d) => d.verdict)).toEqual(["pass", "fail"]);
    }
    bundle = join(ws.dir, "bundle.tar.gz");
    const r = await attest([
      "evidence",
      "export",
      "--config",
      ws.config,
      "--from",
      period.from,
      "--to",
      period.to,
      "--out",
      bundle,
      "--json",
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    archive = readFileSync(bundle);
  }, 600_000);

  it("holds the period's rows, run and evidence documents, PDFs and the redacted config, and verifies", async () => {
    // GNU tar reads the archive as written
    const listed = execFileSync("tar", ["-tzf", bundle], { encoding: "utf8" }).trim().split("\n");
    const paths = readTarGz(archive).map((e) => e.path);
    expect(listed).toEqual(paths);
    expect(paths.slice(0, 3)).toEqual([MANIFEST_FILE, SIGNATURE_FILE, HISTORY_FILE]);
    expect(paths.filter((p) => p.startsWith("runs/"))).toHaveLength(2);
    expect(paths.filter((p) => /^pdf\/attest-audit-.*\.pdf$/.test(p))).toHaveLength(2);
    expect(paths.filter((p) => p.startsWith("evidence/")).length).toBeGreaterThanOrEqual(2);
    expect(paths).toContain("config/attest.json");

    // the period's compliance report, control by control (every framework: none is configured)
    const stem = `report/compliance-${period.from}_${period.to}`;
    expect(paths).toEqual(expect.arrayContaining([`${stem}.pdf`, `${stem}.json`]));
    const report = JSON.parse(
      readTarGz(archive)
        .find((e) => e.path === `${stem}.json`)!
        .data.toString(),
    ) as {
      controls: Array<{ id: string; controls: Array<{ id: string; status: string }> }>;
    };
    expect(report.controls.map((f) => f.id)).toEqual(["iso27001", "soc2", "nist-800-53", "hipaa", "dora"]);
    // the newest drill of damaged/app failed: backup and recovery is not met
    expect(report.controls[1]!.controls.find((c) => c.id === "A1.2")!.status).toBe("not-met");
    const pdfFile = join(ws.dir, "bundled-report.pdf");
    writeFileSync(pdfFile, readTarGz(archive).find((e) => e.path === `${stem}.pdf`)!.data);
    const text = execFileSync("pdftotext", [pdfFile, "-"], { encoding: "utf8" }).replace(/\s+/g, " ");
    expect(text).toContain("Control mapping");
    expect(text).toContain("A1.2 Backup and recovery infrastructure");

    const manifest = JSON.parse(readTarGz(archive)[0]!.data.toString()) as Manifest;
    // its cover names the bundle's content: every file outside report/, as the manifest lists them
    expect(text).toContain("Bundle content SHA-256");
    expect(text).toContain(manifest.contentSha256);
    expect(manifest.contentSha256).toBe(contentHash(manifest.files));
    const rows = new HistoryStore(join(ws.dir, "reports", "history.csv")).read();
    expect(manifest.history).toEqual({
      firstRow: 1,
      periodRows: rows.length,
      linkRows: 0,
      anchor: "0".repeat(64),
      head: rows.at(-1)!.hash,
    });
    expect(manifest.files.map((f) => f.path)).toEqual(paths.slice(2));

    // the configuration travels without its secrets
    const config = readTarGz(archive)
      .find((e) => e.path === "config/attest.json")!
      .data.toString();
    expect(config).toContain('"signing_key": "***"');
    expect(config).not.toContain("PRIVATE KEY");

    const r = await attest(["evidence", "verify", bundle, "--public-key", ws.publicKey]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`${bundle}: OK — signature, ${manifest.files.length} file hashes`);
    expect(r.stdout).toContain(`head ${manifest.history.head}`);
    expect(r.stdout).toContain(
      `content sha256 ${manifest.contentSha256} (printed on the bundled report's cover)`,
    );

    // a head kept outside (the one the export printed, as a mail or a metric would carry it) is in the chain
    const kept = await attest([
      "evidence",
      "verify",
      bundle,
      "--public-key",
      ws.publicKey,
      "--expect-head",
      manifest.history.head,
    ]);
    expect(kept.code, kept.stdout).toBe(0);
  });

  /** Writes a tampered copy and runs the CLI verifier on it. */
  async function verifyTampered(name: string, data: Buffer, extra: string[] = []) {
    const file = join(ws.dir, `${name}.tar.gz`);
    writeFileSync(file, data);
    return attest(["evidence", "verify", file, "--public-key", ws.publicKey, ...extra]);
  }

  it("refuses one changed byte of a PDF, naming the file", async () => {
    const pdf = readTarGz(archive).find((e) => e.path.endsWith(".pdf"))!.path;
    const bad = rewrite(archive, (files) => {
      const data = Buffer.from(files.get(pdf)!);
      data[data.length >> 1]! ^= 0x01;
      files.set(pdf, data);
    });
    const r = await verifyTampered("pdf-byte", bad);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`DOES NOT VERIFY — file ${pdf}: sha256 differs`);
  });

  it("refuses a removed history row: by its hash, and by the chain when the manifest was re-signed", async () => {
    const dropRow = (files: Map<string, Buffer>) => {
      const rows = parseSliceCsv(files.get(HISTORY_FILE)!.toString());
      rows.splice(1, 1);
      files.set(HISTORY_FILE, Buffer.from(sliceCsv(rows)));
    };
    const byHash = await verifyTampered("row-removed", rewrite(archive, dropRow));
    expect(byHash.code).toBe(1);
    expect(byHash.stdout).toContain(`file ${HISTORY_FILE}: sha256 differs`);

    // someone holding the signing key re-signs the manifest: the chain still gives it away
    const resigned = rewrite(
      archive,
      (files) => {
        dropRow(files);
        const m = JSON.parse(files.get(MANIFEST_FILE)!.toString()) as Manifest;
        m.history.periodRows -= 1;
        files.set(MANIFEST_FILE, Buffer.from(JSON.stringify(m)));
      },
      ws.keys.privateKey,
    );
    const byChain = await verifyTampered("row-removed-resigned", resigned);
    expect(byChain.code).toBe(1);
    expect(byChain.stdout).toContain("DOES NOT VERIFY — history row 2: chain link broken");
  });

  it("refuses an edited manifest, an edited signature and a manifest re-signed with another key", async () => {
    const edited = rewrite(archive, (files) => {
      files.set(
        MANIFEST_FILE,
        Buffer.from(files.get(MANIFEST_FILE)!.toString().replace("ACME Corp", "ACME Corq")),
      );
    });
    const signature = rewrite(archive, (files) => {
      const sig = Buffer.from(files.get(SIGNATURE_FILE)!.toString().trim(), "base64");
      sig[0]! ^= 0x80;
      files.set(SIGNATURE_FILE, Buffer.from(sig.toString("base64")));
    });
    const other = rewrite(archive, () => {}, generateKeyPairSync("ed25519").privateKey);
    for (const [name, data] of [
      ["manifest", edited],
      ["signature", signature],
      ["other-key", other],
    ] as const) {
      const r = await verifyTampered(name, data);
      expect(r.code, name).toBe(1);
      expect(r.stdout, name).toContain("DOES NOT VERIFY — manifest signature does not verify");
    }
  });

  it("refuses a file slipped into the archive, and a history the verifier host rewrote before export", async () => {
    const extra = rewrite(archive, (files) => files.set("runs/extra.json", Buffer.from("{}")));
    const r = await verifyTampered("extra", extra);
    expect(r.stdout).toContain("file runs/extra.json: not listed in the manifest");

    // the host's history had a verdict edited: the export says so and the bundle carries the break
    const csv = join(ws.dir, "reports", "history.csv");
    const original = readFileSync(csv, "utf8");
    const before = new HistoryStore(csv).head();
    try {
      writeFileSync(csv, original.replace('"fail"', '"pass"'));
      const out = join(ws.dir, "edited.tar.gz");
      const e = await attest([
        "evidence",
        "export",
        "--config",
        ws.config,
        "--from",
        period.from,
        "--to",
        period.to,
        "--out",
        out,
      ]);
      expect(e.code, e.stdout + e.stderr).toBe(1);
      expect(e.stdout).toContain("HISTORY CHAIN BROKEN");
      const v = await attest(["evidence", "verify", out, "--public-key", ws.publicKey]);
      expect(v.code).toBe(1);
      expect(v.stdout).toMatch(/DOES NOT VERIFY — history row \d+: content does not match its hash/);

      // rewritten with every hash recomputed, the chain holds: only a head kept outside catches it
      const rows = parseSliceCsv(readFileSync(csv, "utf8"));
      rmSync(csv);
      const store = new HistoryStore(csv);
      store.append(rows);
      const re = await attest([
        "evidence",
        "export",
        "--config",
        ws.config,
        "--from",
        period.from,
        "--to",
        period.to,
        "--out",
        out,
      ]);
      expect(re.code, re.stdout + re.stderr).toBe(0);
      expect((await attest(["evidence", "verify", out, "--public-key", ws.publicKey])).code).toBe(0);
      const caught = await attest([
        "evidence",
        "verify",
        out,
        "--public-key",
        ws.publicKey,
        "--expect-head",
        before,
      ]);
      expect(caught.code).toBe(1);
      expect(caught.stdout).toContain(`the chain head kept outside (${before}) is not in the bundle's chain`);
    } finally {
      writeFileSync(csv, original);
    }
  });

  it("needs no config; bad usage exits 2", async () => {
    const noKey = await attest(["evidence", "verify", bundle]);
    expect(noKey.code).toBe(2);
    const notKey = await attest(["evidence", "verify", bundle, "--public-key", ws.config]);
    expect(notKey.code).toBe(2);
    expect(notKey.stderr).toContain("not a PEM public key");

    // exporting needs a signing key in the config
    const unsigned = workspace(
      (dir) => `sources: [ { name: good, type: dump-dir, path: ${join(DUMPS, "good")} } ]
reports: { dir: ${dir}/reports }
`,
    );
    dirs.push(unsigned.dir);
    const e = await attest([
      "evidence",
      "export",
      "--config",
      unsigned.config,
      "--from",
      period.from,
      "--to",
      period.to,
    ]);
    expect(e.code).toBe(2);
    expect(e.stderr).toContain("evidence.signing_key is not set: a bundle cannot be signed");
  });
});

describe("history slice", () => {
  /** Eight days of one drill a day, as the store chains them. */
  function eightDays(): HistoryRecord[] {
    const dir = mkdtempSync(join(tmpdir(), "attest-slice-"));
    dirs.push(dir);
    const store = new HistoryStore(join(dir, "history.csv"));
    for (let d = 7; d >= 0; d--) {
      const at = new Date(NOW.getTime() - d * DAY).toISOString();
      const run: RunResult = {
        run: { id: `audit-${d}`, kind: "audit", startedAt: at, finishedAt: at },
        status: "pass",
        drills: [drill(backup("good", "app", d * DAY + 3_600_000), "pass")],
        violations: [],
      };
      store.append(recordsOfRun(run, at));
    }
    return store.read();
  }

  it("carries the period and every row after it to the head, and the walk holds", () => {
    const rows = eightDays();
    const from = new Date(NOW.getTime() - 5.5 * DAY);
    const to = new Date(NOW.getTime() - 2.5 * DAY);
    const s = sliceHistory(rows, from, to);
    expect(s.info).toEqual({
      firstRow: 3,
      periodRows: 3,
      linkRows: 3,
      anchor: rows[1]!.hash,
      head: rows[7]!.hash,
    });
    expect(checkSlice(parseSliceCsv(sliceCsv(s.rows)), s.info)).toBeUndefined();

    // an edited link row after the period breaks the walk to the head
    const edited = s.rows.map((r) => ({ ...r }));
    edited[4]!.verdict = "fail";
    expect(checkSlice(edited, s.info)).toBe(
      "history row 7: content does not match its hash (the row was edited)",
    );
    // a link row re-hashed after the edit breaks the next link
    edited[4]!.hash = rowHash(edited[4]!);
    expect(checkSlice(edited, s.info)).toMatch(/^history row 8: chain link broken/);
  });

  it("an empty period carries the links only; a period after the head carries nothing", () => {
    const rows = eightDays();
    const after = sliceHistory(rows, new Date(NOW.getTime() + DAY), new Date(NOW.getTime() + 2 * DAY));
    expect(after.rows).toEqual([]);
    expect(after.info.anchor).toBe(rows[7]!.hash);
    expect(checkSlice(after.rows, after.info)).toBeUndefined();
    const gap = sliceHistory(rows, new Date(NOW.getTime() - 3.9 * DAY), new Date(NOW.getTime() - 3.1 * DAY));
    expect(gap.info.periodRows).toBe(0);
    expect(gap.info.linkRows).toBe(4);
  });

  it("the verifier reads public keys only as Ed25519", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
    expect(() => ed25519PublicKey(pem(rsa.publicKey, "spki"))).toThrow("not Ed25519");
    const k = generateKeyPairSync("ed25519");
    expect(verifyBundle(Buffer.from("not an archive"), k.publicKey).problem).toMatch(
      /^archive cannot be read/,
    );
  });
});
