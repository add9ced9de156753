/**
 * `type: barman-cloud` end to end against a real S3 server (Ceph RGW on loopback): backups and WAL
 * written by the real barman-cloud tools, listed and drilled by the real CLI with the read-only
 * account, the bucket byte-identical before and after every run.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DeleteObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import { parseBackupInfo } from "../src/sources/barman-cloud/backup-info.js";
import { attest, localSandboxes, workspace } from "./support/cli.js";
import {
  createTestBucket,
  deleteTestBucket,
  type S3ClusterInfo,
  s3Cluster,
  s3TestClient,
} from "./support/s3.js";

/** What fixtures/build-s3-backups.sh recorded. */
interface Expected {
  prefix: string;
  server_name: string;
  backup_id: string;
  failed_backup_id: string;
  wal_after_backup: string[];
  markers: Array<{ id: number; label: string; committedAt: string }>;
}

/** Every key of a bucket with its ETag and size, read with the read-only account. */
async function bucketState(info: S3ClusterInfo, bucket: string): Promise<string[]> {
  const s3 = s3TestClient(info, "reader");
  const out: string[] = [];
  try {
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const o of page.Contents ?? []) out.push(`${o.Key} ${o.ETag} ${o.Size}`);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } finally {
    s3.destroy();
  }
  return out.sort();
}

/** The run document, or a failure that shows what the CLI said instead. */
function parseRun(r: { stdout: string; stderr: string; code: number | null }): RunResult {
  try {
    return JSON.parse(r.stdout) as RunResult;
  } catch {
    throw new Error(`attest exited ${r.code} without a JSON document: ${r.stderr.slice(-3000)}`);
  }
}

describe("barman-cloud source (CloudNativePG's backups in a bucket, read-only keys)", () => {
  let info: S3ClusterInfo;
  let bucket: string;
  let expected: Expected;
  let dir: string;
  const runs: string[] = [];

  beforeAll(async () => {
    info = await s3Cluster();
    bucket = await createTestBucket("attest-cnpg");
    dir = mkdtempSync(join(tmpdir(), "attest-s3-cnpg-"));
    execFileSync(
      "bash",
      [resolve("fixtures/build-s3-backups.sh"), "barman-cloud", join(dir, "built"), "cnpg"],
      {
        stdio: ["ignore", "ignore", "inherit"],
        timeout: 280_000,
        env: {
          PATH: process.env.PATH,
          S3_ENDPOINT: info.httpsEndpoint,
          S3_REGION: info.region,
          S3_BUCKET: bucket,
          S3_ACCESS_KEY_ID: info.writer.accessKeyId,
          S3_SECRET_ACCESS_KEY: info.writer.secretAccessKey,
          S3_CA_FILE: info.caFile,
        },
      },
    );
    expected = JSON.parse(readFileSync(join(dir, "built", "expected.json"), "utf8")) as Expected;
  });

  afterAll(async () => {
    for (const id of runs) expect(localSandboxes(id), `sandboxes of run ${id}`).toEqual([]);
    const ps = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
    // nothing of this file's runs (their sandbox directories name the run) is left running
    expect(ps.split("\n").filter((l) => runs.some((id) => l.includes(`attest-${id}-`)))).toEqual([]);
    if (bucket) await deleteTestBucket(bucket);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const config = (ws: string) => `storage:
  lab:
    type: s3
    endpoint: ${info.httpsEndpoint}
    region: ${info.region}
    bucket: ${bucket}
    path_style: true
    access_key_id: "\${ATTEST_TEST_S3_KEY}"
    secret_access_key: "\${ATTEST_TEST_S3_SECRET}"
    ca_file: ${info.caFile}
sources:
  - name: cnpg
    type: barman-cloud
    storage: lab
    path: ${expected.prefix}/
    server_name: ${expected.server_name}
    checks:
      queries:
        - { name: markers, database: postgres, sql: "select string_agg(label, ',' order by id) from markers", expect: "= ${expected.markers.map((m) => m.label).join(",")}" }
history: { csv: ${ws}/history.csv }
reports: { dir: ${ws}/reports }
`;

  /** Runs attest ARGS (as the read-only account) and checks the bucket is the same afterwards. */
  const run = async (args: string[]) => {
    const ws = workspace((d) => config(d));
    try {
      const before = await bucketState(info, bucket);
      const r = await attest([...args, "--config", ws.config, "--json"], {
        env: {
          ATTEST_TEST_S3_KEY: info.reader.accessKeyId,
          ATTEST_TEST_S3_SECRET: info.reader.secretAccessKey,
        },
      });
      expect(await bucketState(info, bucket)).toEqual(before);
      // the keys never appear in what Attest prints
      expect(r.stdout + r.stderr).not.toContain(info.reader.secretAccessKey);
      return r;
    } finally {
      rmSync(ws.dir, { recursive: true, force: true });
    }
  };

  it("lists the DONE backup from its backup.info, the FAILED one as a finding, and no WAL gap", async () => {
    const r = await run(["list"]);
    const doc = JSON.parse(r.stdout) as {
      sources: Array<{
        backups: Array<{ id: string; location: string; createdAtOrigin: string; pgMajor: number }>;
        findings: Array<{ kind: string; backupId?: string; message: string }>;
      }>;
    };
    const src = doc.sources[0]!;
    expect(src.backups.map((b) => b.id)).toEqual([expected.backup_id]);
    expect(src.backups[0]).toMatchObject({
      location: `s3://${bucket}/${expected.prefix}/${expected.server_name}/base/${expected.backup_id}/`,
      createdAtOrigin: "catalog",
      pgMajor: 15,
    });
    expect(src.findings.map((f) => [f.kind, f.backupId])).toEqual([
      ["backup_failed", expected.failed_backup_id],
    ]);
    expect(src.findings[0]!.message).toContain("attest_unreadable");
  });

  it("drills the backup to the end of the bucket's WAL, confined, with network to the store only", async () => {
    const r = await run(["drill", "--source", "cnpg"]);
    const doc = parseRun(r);
    runs.push(doc.run.id);
    const d = doc.drills[0]!;
    expect(d.verdict, d.reason).toBe("pass");
    expect(d.backup.id).toBe(expected.backup_id);
    expect(d.checks.find((c) => c.name === "query: markers")?.status).toBe("pass");
    expect(Date.parse(d.reached!.timestamp!)).toBeGreaterThanOrEqual(
      Date.parse(expected.markers.at(-1)!.committedAt),
    );
    expect(d.notes?.join("\n")).toMatch(/only network barman-cloud had \(store relay\)/);
  });

  it("a WAL object deleted from the bucket: the drill fails at that segment and the listing names the gap", async () => {
    const [, gone] = expected.wal_after_backup;
    const s3 = s3TestClient(info, "writer");
    try {
      const Prefix = `${expected.prefix}/${expected.server_name}/wals/${gone!.slice(0, 16)}/${gone}`;
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix }));
      expect(listed.Contents?.length).toBe(1);
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: listed.Contents![0]!.Key! }));
    } finally {
      s3.destroy();
    }
    const r = await run(["audit", "--source", "cnpg", "--no-mail"]);
    const doc = parseRun(r);
    runs.push(doc.run.id);
    expect(r.code).toBe(1);
    const d = doc.drills[0]!;
    expect(d.verdict).toBe("fail");
    expect(d.reason).toContain(`could not deliver ${gone}`);
    const gap = (doc.findings ?? []).find((f) => f.kind === "wal_gap");
    expect(gap?.message).toContain(
      `WAL ${gone} missing (1 segment, archive continues at ${expected.wal_after_backup[2]})`,
    );
  });
});

describe("backup.info", () => {
  it("reads times with their offset, None as absent, and the tablespace list barman writes as a Python repr", () => {
    const info = parseBackupInfo(
      [
        "begin_time=2026-12-04 23:04:48.825714+02:00",
        "end_time=2026-12-04 23:04:49.381002+02:00",
        "begin_wal=00000001000000000000000A",
        "begin_xlog=0/A00028",
        "end_xlog=None",
        "status=DONE",
        "size=None",
        "systemid=7715573198708975529",
        "version=150018",
        "xlog_segment_size=1048576",
        `tablespaces=[('tbs', 16385, '/srv/tbs'), ("it's", 16386, '/srv/q')]`,
        "error=None",
      ].join("\n"),
      "20261204T210448",
    );
    expect(info).toEqual({
      backupId: "20261204T210448",
      status: "DONE",
      beginTime: "2026-12-04T21:04:48.825Z",
      endTime: "2026-12-04T21:04:49.381Z",
      beginWal: "00000001000000000000000A",
      beginXlog: "0/A00028",
      version: 150018,
      systemId: "7715573198708975529",
      walSegmentSize: 1048576,
      tablespaces: [
        { name: "tbs", oid: "16385" },
        { name: "it's", oid: "16386" },
      ],
    });
  });
});
