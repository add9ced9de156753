/**
 * Every `--json` invocation of audit/drill prints exactly one JSON document on standard
 * output, errors included, and bad usage exits 2: an unknown backup id, `--target-time` on a
 * logical dump, a missing option, a config file that is not there.
 */
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { attest, DUMPS, workspace } from "./support/cli.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function config(): string {
  const ws = workspace(
    (dir) =>
      `sources: [{ name: crm, type: dump-dir, path: ${DUMPS}/good, include: ["crm_*"] }]\nhistory: { csv: ${dir}/reports/history.csv }\nreports: { dir: ${dir}/reports }\n`,
  );
  dirs.push(ws.dir);
  return ws.config;
}

/** Runs the CLI and parses its standard output as exactly one JSON document. */
async function run(args: string[]) {
  const r = await attest(args);
  let doc: { status: string; error?: { code: string; message: string } };
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    throw new Error(
      `stdout is not one JSON document (exit ${r.code}): ${r.stdout.slice(0, 300)} ${r.stderr.slice(-500)}`,
    );
  }
  return { ...r, doc };
}

describe("--json errors", () => {
  it("an unknown backup id: exit 2 with the error document", async () => {
    const { code, doc, stderr } = await run([
      "drill",
      "--config",
      config(),
      "--source",
      "crm",
      "--backup",
      "nope.dump",
      "--json",
    ]);
    expect(doc).toEqual({
      status: "error",
      error: { code: "usage", message: 'source crm has no backup with id "nope.dump"' },
    });
    expect(code).toBe(2);
    // the human line still goes to standard error
    expect(stderr).toContain('attest: source crm has no backup with id "nope.dump"');
  });

  it("--target-time on a logical dump is bad usage, said in one line", async () => {
    const { code, doc } = await run([
      "drill",
      "--config",
      config(),
      "--source",
      "crm",
      "--target-time",
      "2026-11-20T00:00:00Z",
      "--json",
    ]);
    expect(code).toBe(2);
    expect(doc.status).toBe("error");
    expect(doc.error?.code).toBe("usage");
    expect(doc.error?.message).toMatch(
      /^--target-time applies to physical backups; crm_\S+\.dump of source crm is a logical dump/,
    );
    expect(doc.error?.message).not.toContain("\n");
  });

  it("a missing required option and a missing config file are usage and config errors (exit 2)", async () => {
    const missing = await run(["drill", "--config", config(), "--json"]);
    expect(missing.code).toBe(2);
    expect(missing.doc).toEqual({
      status: "error",
      error: { code: "usage", message: "required option '--source <name>' not specified" },
    });
    const nofile = await run(["audit", "--config", "/nonexistent/attest.yml", "--json"]);
    expect(nofile.code).toBe(2);
    expect(nofile.doc.error?.code).toBe("config");
    expect(nofile.doc.error?.message).toContain("/nonexistent/attest.yml");
  });
});
