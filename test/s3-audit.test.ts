/**
 * The object-storage issue's "done when", end to end: one bucket of a real S3 server (Ceph RGW on
 * loopback) holds a pg_dump, base backups with the WAL archive_command uploaded, a barman-cloud
 * server and a pgBackRest repository, all written by the real tools. One configuration, one
 * `attest audit` with read-only keys: every family is listed and drilled in confined local
 * sandboxes, a deleted WAL object is a failed drill and a named gap, and the bucket is
 * byte-identical afterwards.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DUMPS } from "./support/cli.js";
import { deleteObject, putObjects, type S3ClusterInfo } from "./support/s3.js";
import {
  attestOnBucket,
  buildS3Backups,
  expectNoLeftovers,
  parseRun,
  s3StorageYaml,
  useScratchBucket,
  writePgbackrestConf,
} from "./support/s3-cli.js";

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
  const expected = {} as Record<Kind, Expected>;
  let pgbrConf: string;

  useScratchBucket("attest-s3-audit", async (lab) => {
    ({ info, bucket } = lab);
    // the three writers are independent (own primary, own prefix): side by side
    await Promise.all(
      KINDS.map(async (kind) => {
        expected[kind] = await buildS3Backups<Expected>(lab, kind, PREFIX[kind]);
      }),
    );
    await putObjects(bucket, [
      {
        key: "dumps/app/crm_20261120T0300.dump",
        body: readFileSync(join(DUMPS, "good", "crm_20261120T0300.dump")),
      },
    ]);
    // pgBackRest reads its repository through its own configuration: the read-only keys
    pgbrConf = writePgbackrestConf(lab, "pgbackrest.conf", PREFIX.pgbackrest);
  });

  const markers = (kind: Kind) =>
    `checks: { queries: [ { name: markers, database: postgres, sql: "select string_agg(label, ',' order by id) from markers", expect: "= ${expected[kind].markers.map((m) => m.label).join(",")}" } ] }`;

  const config = (ws: string) => `${s3StorageYaml(info, bucket)}
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
    await deleteObject(bucket, `${PREFIX.basebackup}/wal/${gone}`);

    // Attest listed and read, and wrote, deleted or tagged nothing (the writer's snapshot is the same)
    const r = await attestOnBucket(bucket, config, ["audit", "--no-mail"]);
    const doc = parseRun(r);
    expectNoLeftovers([doc.run.id]);

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
    expect(r.code).toBe(1);
  });
});
