/**
 * `type: barman-cloud` end to end against a real S3 server (Ceph RGW on loopback): backups and WAL
 * written by the real barman-cloud tools, listed and drilled by the real CLI with the read-only
 * account, the bucket byte-identical before and after every run.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
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

  const config = (ws: string, prefix = expected.prefix) => `storage:
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
    path: ${prefix}/
    server_name: ${expected.server_name}
    checks:
      queries:
        - { name: markers, database: postgres, sql: "select string_agg(label, ',' order by id) from markers", expect: "= ${expected.markers.map((m) => m.label).join(",")}" }
history: { csv: ${ws}/history.csv }
reports: { dir: ${ws}/reports }
`;

  /** Runs attest ARGS (as the read-only account) and checks the bucket is the same afterwards. */
  const run = async (args: string[], prefix?: string) => {
    const ws = workspace((d) => config(d, prefix));
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
    // S3-11: no SQL reached the server while the relay and keys were in the sandbox (log_connections)
    expect(d.notes?.join("\n")).toContain(
      "recovery watched without SQL while the store was reachable (hot_standby off; 0 connection(s) in the server log before the store was closed)",
    );
  });

  it("a backup.info under a directory that is not a barman id is a finding, never drilled; a restore whose backup_label is not the listed backup fails", async () => {
    // a copy of the fixture under its own prefix, changed with the writer's keys (the shared one stays intact)
    const prefix = `${expected.prefix}-named`;
    const base = `${prefix}/${expected.server_name}/base`;
    const s3 = s3TestClient(info, "writer");
    let real: string;
    try {
      let token: string | undefined;
      do {
        const page = await s3.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: `${expected.prefix}/`,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
        for (const o of page.Contents ?? [])
          await s3.send(
            new CopyObjectCommand({
              Bucket: bucket,
              Key: `${prefix}/${o.Key!.slice(expected.prefix.length + 1)}`,
              CopySource: `${bucket}/${o.Key}`,
            }),
          );
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      const got = await s3.send(
        new GetObjectCommand({ Bucket: bucket, Key: `${base}/${expected.backup_id}/backup.info` }),
      );
      real = await got.Body!.transformToString();
      const now = new Date().toISOString().replace("T", " ").replace("Z", "+00:00");
      // the real backup gets a name; "fresh" is a newer backup.info with no data that barman would resolve to it
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${base}/${expected.backup_id}/backup.info`,
          Body: `${real.trimEnd()}\nbackup_name=fresh\n`,
        }),
      );
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${base}/fresh/backup.info`,
          Body: real
            .replace(/^begin_time=.*$/m, `begin_time=${now}`)
            .replace(/^end_time=.*$/m, `end_time=${now}`),
        }),
      );
    } finally {
      s3.destroy();
    }
    const listed = JSON.parse((await run(["list"], prefix)).stdout) as {
      sources: Array<{
        backups: Array<{ id: string }>;
        findings: Array<{ kind: string; severity: string; message: string }>;
      }>;
    };
    expect(listed.sources[0]!.backups.map((b) => b.id)).toEqual([expected.backup_id]);
    const named = listed.sources[0]!.findings.find((f) => f.message.includes('"fresh"'));
    expect(named).toMatchObject({ kind: "backup_unreadable", severity: "critical" });
    expect(named!.message).toContain("not a barman backup id");

    const drilled = parseRun(await run(["drill", "--source", "cnpg", "--backup", "latest"], prefix));
    runs.push(drilled.run.id);
    const d = drilled.drills[0]!;
    expect(d.backup.id).toBe(expected.backup_id);
    expect(d.verdict, d.reason).toBe("pass");
    expect(d.notes?.join("\n")).toContain(`the restored backup_label is ${expected.backup_id}'s`);

    // a well-formed id whose backup.info claims another start than the data it holds
    const other = "20991231T000000";
    const w = s3TestClient(info, "writer");
    try {
      await w.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: `${base}/${other}/data.tar`,
          CopySource: `${bucket}/${base}/${expected.backup_id}/data.tar`,
        }),
      );
      await w.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${base}/${other}/backup.info`,
          Body: real!
            .replace(/^begin_xlog=.*$/m, "begin_xlog=0/FF000028")
            .replace(/^end_time=.*$/m, "end_time=2099-12-31 00:00:00.000000+00:00"),
        }),
      );
    } finally {
      w.destroy();
    }
    const wrong = parseRun(await run(["drill", "--source", "cnpg", "--backup", other], prefix));
    runs.push(wrong.run.id);
    expect(wrong.drills[0]!.verdict).toBe("fail");
    expect(wrong.drills[0]!.reason).toContain("barman-cloud-restore restored a different backup than listed");
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
