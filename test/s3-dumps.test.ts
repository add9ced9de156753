/**
 * pg_dump output in a bucket of a real S3 server (Ceph radosgw on loopback), drilled by the real
 * CLI with the read-only account: the dump-dir family over a key prefix, format and dump time
 * from the first bytes, the object fetched into the sandbox, the bucket untouched.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { attest, DUMPS } from "./support/cli.js";
import { drillSuite, selectedRuntimes } from "./support/runtimes.js";
import { type S3ClusterInfo, useFilledBucket } from "./support/s3.js";
import { s3ReaderEnv, s3StorageYaml } from "./support/s3-cli.js";

const CRM = readFileSync(join(DUMPS, "good", "crm_20261120T0300.dump"));
const APP_DIR = join(DUMPS, "good", "app_20261120T0300.dir");
const APP_GZ = readFileSync(join(DUMPS, "good", "app_20261120T0300.sql.gz"));

/** The objects both runtimes' buckets hold: four dumps under `dumps/app/`, one cut short under `dumps/cut/`. */
function appAndCutDumps(): Array<{ key: string; body: string | Uint8Array }> {
  return [
    { key: "dumps/app/crm_20261120T0300.dump", body: CRM },
    // pg_dump -Fc | gzip
    { key: "dumps/app/crm_20261120T0300.dump.gz", body: gzipSync(CRM) },
    { key: "dumps/app/app_20261120T0300.sql.gz", body: APP_GZ },
    // a directory-format dump: every object under a prefix that holds toc.dat
    ...readdirSync(APP_DIR).map((f) => ({
      key: `dumps/app/app_20261120T0300.dir/${f}`,
      body: readFileSync(join(APP_DIR, f)),
    })),
    // the upload broke off half-way: the object exists, the dump does not
    { key: "dumps/cut/crm_20261121T0300.dump", body: CRM.subarray(0, Math.floor(CRM.length / 2)) },
  ];
}

describe("dumps in an S3 bucket (local runtime)", () => {
  const { config, run } = drillSuite("local");
  let info: S3ClusterInfo;
  let bucket: string;

  // the read-only account's keys by reference (or `accessKey` instead of the key)
  const store = (accessKey?: string) =>
    s3StorageYaml(info, bucket, { lab: accessKey ? { access_key_id: accessKey } : {} });

  // Attest lists, reads and fetches, and writes, deletes or tags nothing: the bucket is checked afterwards
  useFilledBucket(
    "s3-dumps",
    () => [
      ...appAndCutDumps(),
      { key: "dumps/app/README.txt", body: "not a dump, not included" },
      // nothing in it or its name says when it was dumped: the upload's LastModified, said so
      { key: "dumps/undated/latest.sql.gz", body: APP_GZ },
      // plain SQL, as is and compressed with zstd (decompressed by a confined tool once fetched)
      ...["latin1_20261120T0300.sql", "latin1_20261120T0300.sql.zst"].map((f) => ({
        key: `dumps/plain/${f}`,
        body: readFileSync(join(DUMPS, "plain", f)),
      })),
    ],
    (lab) => {
      ({ info, bucket } = lab);
      // the child CLI reads the read-only account's keys through ${ENV} references
      Object.assign(process.env, s3ReaderEnv(info));
    },
  );

  it("lists the dumps under a prefix with their format and dump time from the header", async () => {
    const ws = config(`${store()}
sources:
  - { name: bucket-dumps, type: dump-dir, storage: lab, path: dumps/app/, select: all }`);
    const r = await attest(["list", "--config", ws.config, "--json"]);
    expect(r.code, r.stderr.slice(-1500)).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      sources: Array<{
        backups: Array<{
          id: string;
          format: string;
          createdAt: string;
          createdAtOrigin: string;
          location: string;
        }>;
      }>;
    };
    const backups = doc.sources.flatMap((s) => s.backups);
    expect(backups.map((b) => [b.id, b.format, b.createdAtOrigin]).sort()).toEqual([
      ["app_20261120T0300.dir", "directory", "header"],
      // this plain dump was made without --verbose: no "Started on" line, so the name's time
      ["app_20261120T0300.sql.gz", "plain-gzip", "name"],
      ["crm_20261120T0300.dump", "custom", "header"],
      ["crm_20261120T0300.dump.gz", "custom-gzip", "header"],
    ]);
    expect(backups.map((b) => b.location).sort()).toEqual([
      `s3://${bucket}/dumps/app/app_20261120T0300.dir/`,
      `s3://${bucket}/dumps/app/app_20261120T0300.sql.gz`,
      `s3://${bucket}/dumps/app/crm_20261120T0300.dump`,
      `s3://${bucket}/dumps/app/crm_20261120T0300.dump.gz`,
    ]);
    expect(r.stdout + r.stderr).not.toContain(info.reader.secretAccessKey);

    const undated = config(`${store()}
sources:
  - { name: undated, type: dump-dir, storage: lab, path: dumps/undated/ }`);
    const u = await attest(["list", "--config", undated.config, "--json"]);
    const only = (JSON.parse(u.stdout) as typeof doc).sources[0]!.backups as Array<{
      createdAtOrigin: string;
      createdAt: string;
    }>;
    expect(only.map((b) => b.createdAtOrigin)).toEqual(["mtime"]);
    expect(Math.abs(Date.parse(only[0]!.createdAt) - Date.now())).toBeLessThan(3_600_000);
  });

  it("restores each dump from the bucket into a confined sandbox and passes", async () => {
    const ws = config(`${store()}
sources:
  - { name: bucket-dumps, type: dump-dir, storage: lab, path: dumps/app/, select: all }`);
    const { code, doc, stdout, stderr } = await run(["audit", "--config", ws.config]);
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(doc.status).toBe("pass");
    expect(doc.drills.map((d) => d.backup.format).sort()).toEqual([
      "custom",
      "custom-gzip",
      "directory",
      "plain-gzip",
    ]);
    for (const d of doc.drills) {
      expect(d.verdict, `${d.backup.id}: ${d.reason}`).toBe("pass");
      expect(d.notes?.join("\n")).toMatch(/fetched s3:\/\/.* into the sandbox's directory/);
    }
    expect(stdout + stderr).not.toContain(info.reader.secretAccessKey);
  });

  it("restores plain SQL dumps from the bucket, zstd-compressed ones too", async () => {
    const ws = config(`${store()}
sources:
  - { name: bucket-plain, type: dump-dir, storage: lab, path: dumps/plain/, select: all }`);
    const { code, doc, stderr } = await run(["audit", "--config", ws.config]);
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(doc.drills.map((d) => [d.backup.format, d.verdict]).sort()).toEqual([
      ["plain", "pass"],
      ["plain-zstd", "pass"],
    ]);
  });

  it("fails a dump object cut short", async () => {
    const ws = config(`${store()}
sources:
  - { name: bucket-cut, type: dump-dir, storage: lab, path: dumps/cut/, select: all }`);
    const { code, doc, stderr } = await run(["audit", "--config", ws.config]);
    expect(code, stderr.slice(-2000)).toBe(1);
    expect(doc.drills).toHaveLength(1);
    expect(doc.drills[0]?.verdict).toBe("fail");
    expect(doc.drills[0]?.reason).toMatch(/crm_20261121T0300\.dump/);
  });

  it("says error, naming the S3 code, when the keys are wrong", async () => {
    const ws = config(`${store("NOSUCHKEY00000000000")}
sources:
  - { name: bucket-dumps, type: dump-dir, storage: lab, path: dumps/app/ }`);
    const { code, doc, stderr } = await run(["audit", "--config", ws.config]);
    // Attest could not look: error (exit 3), not a failed backup
    expect(code, stderr.slice(-1500)).toBe(3);
    expect(doc.status).toBe("error");
    expect(JSON.stringify(doc) + stderr).toContain("InvalidAccessKeyId");
  });
});

// the same stored dumps in a container with no network: Attest reads each object from the store and
// pipes it into a process of the container (docker exec's stdin), which writes it into its own
// directory; kept small, each container drill costs seconds
describe.each(selectedRuntimes().filter((r) => r === "docker"))(
  "dumps in an S3 bucket (%s runtime)",
  (runtime) => {
    const { config, run } = drillSuite(runtime);
    let info: S3ClusterInfo;
    let bucket: string;

    useFilledBucket("s3-dumps-docker", appAndCutDumps, (lab) => {
      ({ info, bucket } = lab);
      Object.assign(process.env, s3ReaderEnv(info));
    });

    it("restores each dump from the bucket in a container without network and passes", async () => {
      const ws = config(`${s3StorageYaml(info, bucket)}
sources:
  - { name: bucket-dumps, type: dump-dir, storage: lab, path: dumps/app/, select: all }`);
      const { code, doc, stdout, stderr } = await run(["audit", "--config", ws.config]);
      expect(code, stderr.slice(-2000)).toBe(0);
      expect(doc.drills.map((d) => [d.backup.format, d.verdict]).sort()).toEqual([
        ["custom", "pass"],
        ["custom-gzip", "pass"],
        ["directory", "pass"],
        ["plain-gzip", "pass"],
      ]);
      for (const d of doc.drills) {
        expect(d.confinement, d.backup.id).toMatch(/docker container: network none/);
        expect(d.notes?.join("\n")).toMatch(/fetched s3:\/\/.* into the sandbox's directory/);
      }
      expect(stdout + stderr).not.toContain(info.reader.secretAccessKey);
    });

    it("fails a dump object cut short, as on disk", async () => {
      const ws = config(`${s3StorageYaml(info, bucket)}
sources:
  - { name: bucket-cut, type: dump-dir, storage: lab, path: dumps/cut/, select: all }`);
      const { code, doc, stderr } = await run(["audit", "--config", ws.config]);
      expect(code, stderr.slice(-2000)).toBe(1);
      expect(doc.drills.map((d) => d.verdict)).toEqual(["fail"]);
      expect(doc.drills[0]?.reason).toMatch(/crm_20261121T0300\.dump: .*cut off/);
    });
  },
);
