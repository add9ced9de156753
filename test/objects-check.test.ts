/**
 * Files and database restored together: a real pg_dump of an application that keeps its files in
 * object storage (fixtures/build-objects.sh) is drilled by the real CLI, and its `objects` check
 * compares the keys the restored table names with a local mirror directory and with a bucket of a
 * real S3 server (Ceph radosgw on loopback, read-only account, the bucket unchanged).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../src/config/load.js";
import type { RunResult } from "../src/model.js";
import { ROOT } from "./support/cli.js";
import { drillSuite } from "./support/runtimes.js";
import { type S3ClusterInfo, useFilledBucket } from "./support/s3.js";
import { s3ReaderEnv, s3StorageYaml } from "./support/s3-cli.js";

const OUT = join(ROOT, "fixtures", "generated", "objects");
const DUMPS_DIR = join(OUT, "dumps");
/** The key the bucket never received (the backup set is incomplete). */
const NOT_UPLOADED = "2026/11/doc-01234.pdf";

let keys: string[] = [];

beforeAll(() => {
  execFileSync("bash", [join(ROOT, "fixtures", "build-objects.sh"), OUT], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  keys = readFileSync(join(OUT, "keys.txt"), "utf8").split("\n").filter(Boolean);
});

/** The objects checks of the one drill of a run. */
function objectResults(doc: RunResult) {
  expect(doc.drills).toHaveLength(1);
  return doc.drills[0]!.checks.filter((c) => c.name.startsWith("objects"));
}

const source = (checks: string) => `
sources:
  - name: docs
    type: dump-dir
    path: ${DUMPS_DIR}
    checks:
      objects:${checks}`;

describe("objects check configuration", () => {
  const yaml = (objects: string) => `
storage:
  mirror: { type: local, path: ${tmpdir()} }
sources:
  - name: docs
    type: dump-dir
    path: ${tmpdir()}
    checks:
      objects: ${objects}
`;

  it("keeps path as a key prefix, joins the store, and defaults the query timeout", () => {
    const cfg = parseConfig(
      yaml("{ database: docs, sql: select k from t, storage: mirror, path: files/ }"),
      "/nonexistent/attest.yml",
    );
    const [o] = cfg.sources[0]!.checks.objects!;
    expect(o).toMatchObject({ path: "files/", timeout: 600_000, database: "docs" });
    expect(o!.storage).toEqual({ name: "mirror", config: { type: "local", path: tmpdir() } });
  });

  it("names an unknown store and duplicate check names", () => {
    const parse = (objects: string) => {
      try {
        parseConfig(yaml(objects), "/nonexistent/attest.yml");
      } catch (err) {
        if (err instanceof ConfigError) return err.issues;
      }
      return [];
    };
    expect(parse("{ database: docs, sql: select 1, storage: nowhere }")).toEqual([
      'sources[0].checks.objects[0].storage: no store "nowhere" under storage: (configured: mirror)',
    ]);
    expect(
      parse(
        "[{ database: a, sql: select 1, storage: mirror }, { database: b, sql: select 1, storage: mirror }]",
      ),
    ).toEqual([
      'sources[0].checks.objects[1].name: two object checks are called "objects": give each a distinct name',
    ]);
  });
});

describe("objects check against a local mirror directory", () => {
  const { config, run } = drillSuite("local");
  const mirror = mkdtempSync(join(tmpdir(), "attest-objects-mirror-"));
  afterAll(() => rmSync(mirror, { recursive: true, force: true }));

  beforeAll(() => {
    for (const k of keys) {
      mkdirSync(dirname(join(mirror, "files", k)), { recursive: true });
      writeFileSync(join(mirror, "files", k), `content of ${k}\n`);
    }
  });

  const yaml = () => `
storage:
  mirror: { type: local, path: ${mirror} }
${source(`
        - name: all
          database: docs
          sql: "select object_key from attachments order by id"
          storage: mirror
          path: files
        - name: first five
          database: docs
          sql: "select object_key from attachments where id <= 5;"
          storage: mirror
          path: files/`)}`;

  it("passes when every referenced file is in the mirror, listing many keys and looking up few", async () => {
    const ws = config(yaml());
    const { code, doc, stderr } = await run(["drill", "--config", ws.config, "--source", "docs"]);
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(doc.drills[0]?.verdict).toBe("pass");
    const [all, few] = objectResults(doc);
    expect(all).toMatchObject({ name: "objects: all", status: "pass" });
    expect(all!.detail).toBe(
      `1,501 keys referenced, all present under ${join(mirror, "files")}/; 3 rows with a NULL or empty key skipped`,
    );
    expect(all!.evidence).toMatchObject({ mode: "listing", listed: 1501, referenced: 1501, skipped: 3 });
    expect(few).toMatchObject({ name: "objects: first five", status: "pass" });
    expect(few!.detail).toMatch(/^5 keys referenced, all present under /);
    expect(few!.evidence).toMatchObject({ mode: "lookup", referenced: 5 });
  });

  it("fails naming the file removed from the mirror", async () => {
    unlinkSync(join(mirror, "files", keys[2]!));
    const ws = config(yaml());
    const { code, doc, stderr } = await run(["drill", "--config", ws.config, "--source", "docs"]);
    expect(code, stderr.slice(-2000)).toBe(1);
    expect(doc.drills[0]?.verdict).toBe("fail");
    const [all, few] = objectResults(doc);
    for (const r of [all, few]) {
      expect(r?.status).toBe("fail");
      expect(r?.detail).toContain(`1 of `);
      expect(r?.detail).toContain(`missing under ${join(mirror, "files")}/: ${keys[2]}`);
    }
    expect(all!.detail).toMatch(/^1 of 1,501 referenced keys missing/);
    expect(doc.drills[0]?.reason).toContain(keys[2]!);
  });
});

describe("objects check against an S3 bucket", () => {
  const { config, run } = drillSuite("local");
  let info: S3ClusterInfo;
  let bucket: string;

  // Attest lists and looks up, and writes, deletes or tags nothing: the bucket is checked afterwards
  useFilledBucket(
    "objects-check",
    () => [
      ...keys.filter((k) => k !== NOT_UPLOADED).map((k) => ({ key: `app/files/${k}`, body: k })),
      // outside the prefix: not counted as present
      { key: `app/other/${NOT_UPLOADED}`, body: "elsewhere" },
      { key: `app/files-old/${NOT_UPLOADED}`, body: "a prefix that only starts the same" },
    ],
    (lab) => {
      ({ info, bucket } = lab);
      // the child CLI reads the read-only account's keys through ${ENV} references
      Object.assign(process.env, s3ReaderEnv(info));
    },
  );

  it("passes over more than 1,000 keys (a listing of several pages)", async () => {
    const ws = config(`
${s3StorageYaml(info, bucket)}
${source(` { database: docs, storage: lab, path: app/files/, sql: "select object_key from attachments where object_key <> '${NOT_UPLOADED}'" }`)}`);
    const { code, doc, stdout, stderr } = await run(["drill", "--config", ws.config, "--source", "docs"]);
    expect(code, stderr.slice(-2000)).toBe(0);
    const [r] = objectResults(doc);
    expect(r).toMatchObject({ name: "objects", status: "pass" });
    expect(r!.detail).toBe(
      // `<>` leaves the NULL keys out; the empty one is counted apart
      `1,500 keys referenced, all present under s3://${bucket}/app/files/; 1 row with a NULL or empty key skipped`,
    );
    expect(r!.evidence).toMatchObject({ mode: "listing", listed: 1500 });
    expect(stdout + stderr).not.toContain(info.reader.secretAccessKey);
  });

  it("fails naming the key the bucket does not hold", async () => {
    const ws = config(`
${s3StorageYaml(info, bucket)}
${source(` { database: docs, storage: lab, path: app/files, sql: "select object_key from attachments" }`)}`);
    const { code, doc, stderr } = await run(["drill", "--config", ws.config, "--source", "docs"]);
    expect(code, stderr.slice(-2000)).toBe(1);
    expect(doc.drills[0]?.verdict).toBe("fail");
    const [r] = objectResults(doc);
    expect(r?.status).toBe("fail");
    expect(r?.detail).toBe(
      `1 of 1,501 referenced keys missing under s3://${bucket}/app/files/: ${NOT_UPLOADED}; 3 rows with a NULL or empty key skipped`,
    );
  });

  it("looks few keys up one by one and names the missing one", async () => {
    const ws = config(`
${s3StorageYaml(info, bucket)}
${source(` { database: docs, storage: lab, path: app/files/, sql: "select object_key from attachments where id between 1230 and 1240" }`)}`);
    const { code, doc, stderr } = await run(["drill", "--config", ws.config, "--source", "docs"]);
    expect(code, stderr.slice(-2000)).toBe(1);
    const [r] = objectResults(doc);
    expect(r?.status).toBe("fail");
    expect(r?.detail).toBe(
      `1 of 11 referenced keys missing under s3://${bucket}/app/files/: ${NOT_UPLOADED}`,
    );
    expect(r?.evidence).toMatchObject({ mode: "lookup" });
  });

  it("says error, naming the S3 code, for wrong keys, and error for a query that fails", async () => {
    const ws = config(`
${s3StorageYaml(info, bucket, { lab: {}, wrong: { access_key_id: "NOSUCHKEY00000000000" } })}
${source(`
        - { name: wrong keys, database: docs, storage: wrong, path: app/files/, sql: "select object_key from attachments" }
        - { name: bad query, database: docs, storage: lab, path: app/files/, sql: "select object_key from no_such_table" }`)}`);
    const { code, doc, stderr } = await run(["drill", "--config", ws.config, "--source", "docs"]);
    // Attest could not verify: error (exit 3), not a failed backup
    expect(code, stderr.slice(-2000)).toBe(3);
    expect(doc.drills[0]?.verdict).toBe("error");
    const [wrong, bad] = objectResults(doc);
    expect(wrong?.status).toBe("error");
    expect(wrong?.detail).toContain("InvalidAccessKeyId");
    expect(bad?.status).toBe("error");
    expect(bad?.detail).toMatch(/the objects query failed: .*no_such_table/);
  });
});
