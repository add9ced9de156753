/** Configuration: references, defaults, and errors that name the key path. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../src/config/load.js";
import { redact } from "../src/util/redact.js";

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
