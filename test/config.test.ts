/** Configuration: references, defaults, and errors that name the key path. */
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseDocument, stringify } from "yaml";
import { ConfigError, parseConfig } from "../src/config/load.js";
import { outputDirs } from "../src/config/output-dirs.js";
import { runLockPath } from "../src/scheduler/run-lock.js";
import { redact } from "../src/util/redact.js";
import { attest, type CliResult, ROOT, workspace } from "./support/cli.js";

const dir = mkdtempSync(join(tmpdir(), "attest-cfg-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const parse = (yaml: string, env: NodeJS.ProcessEnv = {}) => parseConfig(yaml, join(dir, "attest.yml"), env);
const errorOf = (yaml: string, env: NodeJS.ProcessEnv = {}) => {
  try {
    parse(yaml, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues.join("; ");
  }
  throw new Error("expected a config error");
};
const source = `sources: [{ name: a, type: dump-dir, path: ${dir} }]`;

describe("config", () => {
  it("fills defaults and freezes the result", () => {
    const c = parse(source);
    expect(c.sandbox).toMatchObject({ runtime: "local", concurrency: 1, timeout: 7_200_000 });
    expect(c.sources[0]).toMatchObject({
      select: "latest",
      jobs: 2,
      checks: { amcheck: true, full_read: true },
    });
    expect(Object.isFrozen(c.sources[0])).toBe(true);
  });

  it("resolves relative paths against the config file's folder", () => {
    const c = parse(`${source}\nhistory: { csv: ./out/h.csv }`);
    expect(c.history.csv).toBe(join(dir, "out", "h.csv"));
  });

  it("applies the policies config.example.yml documents when there is no policies: block", () => {
    const c = parse(source);
    const H = 3_600_000;
    expect(c.policies).toEqual({
      rpo: 26 * H,
      rto: 30 * 60_000,
      verify_every: 7 * 24 * H,
      max_gap: 26 * H,
      retention: { min_count: 7, min_days: 7, max_days: 35 },
    });
    // the documented block, parsed as a config, gives the same targets
    const example = parseDocument(readFileSync(join(ROOT, "config.example.yml"), "utf8")).toJS() as {
      policies: Record<string, unknown>;
    };
    const documented = parse(`${source}\n${stringify({ policies: example.policies })}`).policies;
    expect(documented).toMatchObject(c.policies);
    // a written block replaces the defaults whole; an empty one sets no target
    expect(parse(`${source}\npolicies: {}`).policies).toEqual({});
    expect(parse(`${source}\npolicies: { rpo: 2d }`).policies).toEqual({ rpo: 48 * H });
  });

  it("resolves default paths against the config file's folder too, whatever the working directory", () => {
    const c = parse(source);
    expect(c.history.csv).toBe(join(dir, "reports", "history.csv"));
    expect(c.reports.dir).toBe(join(dir, "reports"));
    // the folders derived from them (lock, outbox, plan state) follow
    expect(runLockPath(c)).toBe(join(dir, "reports", "history.csv.lock"));
    expect(outputDirs(c).every((o) => isAbsolute(o.dir))).toBe(true);
  });

  it.each([
    [
      `sources: [{ name: a, type: dump-dir, path: ${dir}/nope }]`,
      "sources[0].path: directory does not exist",
    ],
    [`sources: [{ name: a, type: dump-dir, path: ${dir}, jobs: 0 }]`, "sources[0].jobs:"],
    [`sources: [{ name: a, type: dump-dir, path: ${dir}, colour: red }]`, "sources[0]: unknown key colour"],
    [`sources: [{ name: a, type: tape, path: ${dir} }]`, "sources[0].type:"],
    [`sources: [{ name: "bad name", type: dump-dir, path: ${dir} }]`, "sources[0].name:"],
    [`${source}\npolicies: { rpo: soon }`, 'policies.rpo: "soon" is not a duration'],
    [`${source}\nsandbox: { runtime: podman }`, "sandbox.runtime:"],
    [
      `sources: [{ name: a, type: dump-dir, path: ${dir} }, { name: a, type: dump-dir, path: ${dir} }]`,
      'sources[1].name: duplicate source name "a"',
    ],
    [`sources: [{ name: a, type: dump-dir, path: ${dir}, select: "random:x@7d" }]`, "sources[0].select"],
    [
      `sources: [{ name: a, type: dump-dir, path: ${dir}, checks: { queries: [{ name: q, database: d, sql: s, expect: "roughly 5" }] } }]`,
      "sources[0].checks.queries[0].expect",
    ],
    ["sources: []", "sources: at least one source is needed"],
    ["sources: [ { name: a", "line 1"],
    ["- just a list", "(top level): the file must be a YAML mapping"],
  ])("rejects %s", (yaml, message) => {
    expect(errorOf(yaml)).toContain(message);
  });

  it("resolves environment and file references and redacts secret values", () => {
    const secretFile = join(dir, "pw");
    writeFileSync(secretFile, "s3cret-from-file\n");
    const c = parse(`${source}\norganization: { name: "\${ORG}" }\nhistory: { csv: "${dir}/\${ORG}.csv" }`, {
      ORG: "ACME",
    });
    expect(c.organization.name).toBe("ACME");
    expect(c.history.csv).toBe(join(dir, "ACME.csv"));
    // a secret-looking key registers its value for redaction
    expect(() => parse(`${source}\nbogus_password: "\${file:${secretFile}}"`)).toThrow(
      /unknown key bogus_password/,
    );
    expect(redact("connecting with s3cret-from-file now")).toBe("connecting with *** now");
    expect(redact("postgres://u:hunter2@127.0.0.1/db")).toBe("postgres://u:***@127.0.0.1/db");
  });

  it("names the key of an unresolved reference", () => {
    expect(errorOf(`${source}\norganization: { name: "\${NOPE_NOT_SET}" }`)).toBe(
      "organization.name: environment variable NOPE_NOT_SET is not set",
    );
    expect(errorOf(`${source}\norganization: { name: "\${file:${dir}/missing}" }`)).toMatch(
      /^organization\.name: cannot read secret file .*ENOENT/,
    );
  });
});

/** Runs `attest ARGS` as the unprivileged account `nobody` (root may write anywhere). */
function attestAsNobody(args: string[], onSpawn?: (pid: number) => void): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "setpriv",
      [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        process.execPath,
        join(ROOT, "dist", "cli", "main.js"),
        ...args,
      ],
      { stdio: ["ignore", "pipe", "pipe"], cwd: "/" },
    );
    if (child.pid) onSpawn?.(child.pid);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("config check (CLI)", () => {
  it("says in one line when the history and reports folder cannot be created, and exits 2", async () => {
    // a config in a folder its user may read but not write: the default ./reports cannot be made
    const top = mkdtempSync(join(tmpdir(), "attest-cfg-ro-"));
    try {
      const conf = join(top, "conf");
      mkdirSync(conf);
      const file = join(conf, "attest.yml");
      writeFileSync(
        file,
        `sources: [{ name: a, type: dump-dir, path: ${conf} }]\nservice: { listen: "127.0.0.1:0" }\n`,
      );
      chmodSync(top, 0o755);
      chmodSync(conf, 0o555);
      const r = await attestAsNobody(["config", "check", "--config", file]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(
        `attest: ${file}: history.csv, reports.dir: ${conf}/reports cannot be created: ${conf} is not writable (EACCES)\n`,
      );
      // a run stops before it starts, with the same line, instead of an ENOENT at its first write
      const run = await attestAsNobody(["audit", "--config", file, "--no-mail"]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`history.csv, reports.dir: ${conf}/reports cannot be created`);
      // nor does the service start: every scheduled run would fail the same way
      let servePid = 0;
      try {
        const serve = await attestAsNobody(["serve", "--config", file], (pid) => {
          servePid = pid;
        });
        expect(serve.code).toBe(2);
        expect(serve.stderr).toContain(`history.csv, reports.dir: ${conf}/reports cannot be created`);
      } finally {
        // a service that started anyway (the bug) must not outlive the test
        try {
          process.kill(servePid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      // the same folder, writable: OK
      chmodSync(conf, 0o777);
      const ok = await attestAsNobody(["config", "check", "--config", file]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/: OK — 1 source\(s\)/);
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });

  it("--json prints each source's effective policies", async () => {
    const w = workspace(
      (d) =>
        `policies: { rpo: 26h, verify_every: 7d, retention: { min_count: 7 } }\n` +
        `sources:\n  - { name: a, type: dump-dir, path: ${d} }\n` +
        `  - { name: b, type: dump-dir, path: ${d}, policies: { rpo: 50h, retention: { max_days: 35 } } }\n`,
    );
    try {
      const r = await attest(["config", "check", "--config", w.config, "--json"]);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as { ok: boolean; policies: Record<string, unknown> };
      expect(doc.ok).toBe(true);
      expect(doc.policies).toEqual({
        a: { rpo: "1d 2h", verify_every: "7d", retention: { min_count: 7 } },
        b: { rpo: "2d 2h", verify_every: "7d", retention: { min_count: 7, max_days: 35 } },
      });
    } finally {
      rmSync(w.dir, { recursive: true, force: true });
    }
  });
});
