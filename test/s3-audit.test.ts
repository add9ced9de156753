/**
 * The object-storage issue's "done when", end to end: one bucket of a real S3 server (Ceph RGW on
 * loopback) holds a pg_dump, base backups with the WAL archive_command uploaded, a barman-cloud
 * server and a pgBackRest repository, all written by the real tools. One configuration, one
 * `attest audit` with read-only keys: every family is listed and drilled in confined local
 * sandboxes, a deleted WAL object is a failed drill and a named gap, and the bucket is
 * byte-identical afterwards.
 */
import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import { attest, DUMPS, localSandboxes, workspace } from "./support/cli.js";
import {
  bucketSnapshot,
  createTestBucket,
  deleteTestBucket,
  putObjects,
  type S3ClusterInfo,
  s3Cluster,
  s3TestClient,
} from "./support/s3.js";

/** What fixtures/build-s3-backups.sh recorded for one kind. */
interface Expected {
  prefix: string;
  server_name: string;
  backup_id: string;
  wal_after_backup: string[];
  markers: Array<{ id: number; label: string; committedAt: string }>;
}

const KINDS = ["basebackup", "barman-cloud", "pgbackrest"] as const;
type Kind = (typeof KINDS)[number];
const PREFIX: Record<Kind, string> = { basebackup: "pg", "barman-cloud": "cnpg", pgbackrest: "pgbr" };

describe("attest audit over one bucket: a dump, base backups + WAL, barman-cloud, pgBackRest", () => {
  let info: S3ClusterInfo;
  let bucket: string;
  let dir: string;
  const expected = {} as Record<Kind, Expected>;
  let pgbrConf: string;

  beforeAll(async () => {
    info = await s3Cluster();
    bucket = await createTestBucket("attest-audit");
    dir = mkdtempSync(join(tmpdir(), "attest-s3-audit-"));
    const env = {
      PATH: process.env.PATH,
      S3_ENDPOINT: info.httpsEndpoint,
      S3_REGION: info.region,
      S3_BUCKET: bucket,
      S3_ACCESS_KEY_ID: info.writer.accessKeyId,
      S3_SECRET_ACCESS_KEY: info.writer.secretAccessKey,
      S3_CA_FILE: info.caFile,
    };
    // the three writers are independent (own primary, own prefix): side by side
    await Promise.all(
      KINDS.map((kind) =>
        promisify(execFile)(
          "bash",
          [resolve("fixtures/build-s3-backups.sh"), kind, join(dir, kind), PREFIX[kind]],
          {
            timeout: 280_000,
            env,
          },
        ),
      ),
    );
    for (const kind of KINDS)
      expected[kind] = JSON.parse(readFileSync(join(dir, kind, "expected.json"), "utf8")) as Expected;
    await putObjects(bucket, [
      {
        key: "dumps/app/crm_20261120T0300.dump",
        body: readFileSync(join(DUMPS, "good", "crm_20261120T0300.dump")),
      },
    ]);
    // pgBackRest reads its repository through its own configuration: the read-only keys, owner-only
    copyFileSync(info.caFile, join(dir, "ca.crt"));
    const { hostname, port } = new URL(info.httpsEndpoint);
    pgbrConf = join(dir, "pgbackrest.conf");
    writeFileSync(
      pgbrConf,
      [
        "[global]",
        "repo1-type=s3",
        `repo1-path=/${PREFIX.pgbackrest}`,
        `repo1-s3-endpoint=${hostname}`,
        `repo1-storage-port=${port}`,
        `repo1-s3-bucket=${bucket}`,
        `repo1-s3-region=${info.region}`,
        "repo1-s3-uri-style=path",
        `repo1-s3-key=${info.reader.accessKeyId}`,
        `repo1-s3-key-secret=${info.reader.secretAccessKey}`,
        `repo1-storage-ca-file=${join(dir, "ca.crt")}`,
        "",
        "[demo]",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
  });

  afterAll(async () => {
    if (bucket) await deleteTestBucket(bucket);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const markers = (kind: Kind) =>
    `checks: { queries: [ { name: markers, database: postgres, sql: "select string_agg(label, ',' order by id) from markers", expect: "= ${expected[kind].markers.map((m) => m.label).join(",")}" } ] }`;

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
  - { name: app-dumps, type: dump-dir, storage: lab, path: dumps/app/ }
  - { name: app-base, type: basebackup, storage: lab, path: ${PREFIX.basebackup}/base/, wal_archive: ${PREFIX.basebackup}/wal/, ${markers("basebackup")} }
  - { name: cnpg-main, type: barman-cloud, storage: lab, path: ${PREFIX["barman-cloud"]}/, server_name: ${expected["barman-cloud"].server_name}, ${markers("barman-cloud")} }
  - { name: pgbr-s3, type: pgbackrest, stanza: demo, config_file: ${pgbrConf}, ${markers("pgbackrest")} }
sandbox: { runtime: local }
history: { csv: ${ws}/history.csv }
reports: { dir: ${ws}/reports }
`;

  it("lists and drills every family with read-only keys, fails the drill whose WAL object is gone, names the gap, writes nothing", async () => {
    // the fault: one segment archive_command uploaded after the newest base backup, deleted
    const gone = expected.basebackup.wal_after_backup[1]!;
    const s3 = s3TestClient(info, "writer");
    try {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${PREFIX.basebackup}/wal/${gone}` }));
    } finally {
      s3.destroy();
    }

    const ws = workspace((d) => config(d));
    let doc: RunResult;
    let code: number | null;
    const before = await bucketSnapshot(bucket);
    try {
      const r = await attest(["audit", "--config", ws.config, "--json", "--no-mail"], {
        env: {
          ATTEST_TEST_S3_KEY: info.reader.accessKeyId,
          ATTEST_TEST_S3_SECRET: info.reader.secretAccessKey,
        },
      });
      code = r.code;
      try {
        doc = JSON.parse(r.stdout) as RunResult;
      } catch {
        doc = {} as RunResult;
      }
      if (!doc.run)
        throw new Error(
          `attest exited ${r.code} without a run document: ${r.stdout.slice(0, 2000)} ${r.stderr.slice(-3000)}`,
        );
      expect(r.stdout + r.stderr).not.toContain(info.reader.secretAccessKey);
    } finally {
      rmSync(ws.dir, { recursive: true, force: true });
    }
    // Attest listed and read, and wrote, deleted or tagged nothing
    expect(await bucketSnapshot(bucket)).toEqual(before);
    expect(localSandboxes(doc.run.id)).toEqual([]);

    const bySource = new Map(doc.drills.map((d) => [d.source, d]));
    expect([...bySource.keys()].sort()).toEqual(["app-base", "app-dumps", "cnpg-main", "pgbr-s3"]);
    for (const name of ["app-dumps", "cnpg-main", "pgbr-s3"]) {
      const d = bySource.get(name)!;
      expect(d.verdict, `${name}: ${d.reason}`).toBe("pass");
    }
    expect(bySource.get("cnpg-main")!.backup.id).toBe(expected["barman-cloud"].backup_id);
    expect(bySource.get("pgbr-s3")!.backup.id).toBe(expected.pgbackrest.backup_id);
    for (const name of ["cnpg-main", "pgbr-s3"])
      expect(bySource.get(name)!.checks.find((c) => c.name === "query: markers")?.status).toBe("pass");

    const base = bySource.get("app-base")!;
    expect(base.backup.id).toBe(expected.basebackup.backup_id);
    expect(base.verdict).toBe("fail");
    expect(base.reason).toContain(`WAL segment ${gone} is missing`);
    const gap = (doc.findings ?? []).find((f) => f.source === "app-base" && f.kind === "wal_gap");
    expect(gap?.message).toContain(`WAL ${gone} missing`);
    expect(code).toBe(1);
  });
});
