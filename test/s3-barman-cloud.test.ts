/**
 * `type: barman-cloud` end to end against a real S3 server (Ceph RGW on loopback): backups and WAL
 * written by the real barman-cloud tools, listed and drilled by the real CLI with the read-only
 * account, the bucket byte-identical before and after every run.
 */
import { describe, expect, it } from "vitest";
import { parseBackupInfo } from "../src/sources/barman-cloud/backup-info.js";
import {
  copyObject,
  copyPrefix,
  deleteObject,
  keysUnder,
  putObjects,
  readerBucketState,
  readObject,
  type S3ClusterInfo,
} from "./support/s3.js";
import { attestOnBucket, parseRun, s3StorageYaml, useS3Backups } from "./support/s3-cli.js";

/** What fixtures/build-s3-backups.sh recorded. */
interface Expected {
  prefix: string;
  server_name: string;
  backup_id: string;
  failed_backup_id: string;
  wal_after_backup: string[];
  markers: Array<{ id: number; label: string; committedAt: string }>;
}

describe("barman-cloud source (CloudNativePG's backups in a bucket, read-only keys)", () => {
  let info: S3ClusterInfo;
  let bucket: string;
  let expected: Expected;
  const { runs } = useS3Backups<Expected>(
    { label: "attest-s3-cnpg", kind: "barman-cloud", prefix: "cnpg" },
    (lab) => {
      ({ info, bucket, expected } = lab);
    },
  );

  const config = (ws: string, prefix = expected.prefix) => `${s3StorageYaml(info, bucket)}
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
  const run = (args: string[], prefix?: string) =>
    attestOnBucket(bucket, (d) => config(d, prefix), args, { listing: readerBucketState });

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
    await copyPrefix(bucket, expected.prefix, prefix);
    const real = (await readObject(bucket, `${base}/${expected.backup_id}/backup.info`)).toString("utf8");
    const now = new Date().toISOString().replace("T", " ").replace("Z", "+00:00");
    // the real backup gets a name; "fresh" is a newer backup.info with no data that barman would resolve to it
    await putObjects(bucket, [
      { key: `${base}/${expected.backup_id}/backup.info`, body: `${real.trimEnd()}\nbackup_name=fresh\n` },
      {
        key: `${base}/fresh/backup.info`,
        body: real
          .replace(/^begin_time=.*$/m, `begin_time=${now}`)
          .replace(/^end_time=.*$/m, `end_time=${now}`),
      },
    ]);
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
    await copyObject(bucket, `${base}/${expected.backup_id}/data.tar`, `${base}/${other}/data.tar`);
    await putObjects(bucket, [
      {
        key: `${base}/${other}/backup.info`,
        body: real
          .replace(/^begin_xlog=.*$/m, "begin_xlog=0/FF000028")
          .replace(/^end_time=.*$/m, "end_time=2099-12-31 00:00:00.000000+00:00"),
      },
    ]);
    const wrong = parseRun(await run(["drill", "--source", "cnpg", "--backup", other], prefix));
    runs.push(wrong.run.id);
    expect(wrong.drills[0]!.verdict).toBe("fail");
    expect(wrong.drills[0]!.reason).toContain("barman-cloud-restore restored a different backup than listed");
  });

  it("a WAL object deleted from the bucket: the drill fails at that segment and the listing names the gap", async () => {
    const [, gone] = expected.wal_after_backup;
    const listed = await keysUnder(
      bucket,
      `${expected.prefix}/${expected.server_name}/wals/${gone!.slice(0, 16)}/${gone}`,
    );
    expect(listed.length).toBe(1);
    await deleteObject(bucket, listed[0]!);
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
