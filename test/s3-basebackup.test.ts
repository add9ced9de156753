/**
 * `type: basebackup` over a bucket against a real S3 server (Ceph RGW on loopback): a PostgreSQL 15
 * primary whose archive_command uploads each segment to `wal/`, and pg_basebackup tar output
 * (plain and gzip) uploaded with its manifest under `base/<id>/`. Listed and drilled by the real
 * CLI with the read-only account; the bucket is byte-identical before and after every run. Faults
 * are made on copies of the fixture under fresh prefixes, never on the shared one.
 */
import { execFileSync } from "node:child_process";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { leftovers, sandboxYaml, selectedRuntimes } from "./support/runtimes.js";
import { copyPrefix, deleteObject, rewriteObject, type S3ClusterInfo } from "./support/s3.js";
import { attestOnBucket, parseRun, S3_KEY_REF, s3StorageYaml, useS3Backups } from "./support/s3-cli.js";

/** What fixtures/build-s3-backups.sh basebackup recorded. */
interface Expected {
  prefix: string;
  backup_id: string;
  earlier_backup_id: string;
  stop_wal: string;
  wal_after_backup: string[];
  system_identifier: string;
  markers: Array<{ id: number; label: string; committedAt: string }>;
}

interface Listed {
  sources: Array<{
    backups: Array<{
      id: string;
      format: string;
      location: string;
      createdAt: string;
      createdAtOrigin: string;
      pgMajor: number;
      series: string;
      walRange?: { startWal?: string; stopWal?: string };
    }>;
    findings: Array<{ kind: string; backupId?: string; severity: string; message: string }>;
  }>;
}

describe("basebackup source over a bucket (archive_command uploads, pg_basebackup tars, read-only keys)", () => {
  let info: S3ClusterInfo;
  let bucket: string;
  let expected: Expected;
  const { runs } = useS3Backups<Expected>(
    { label: "attest-s3-base", kind: "basebackup", prefix: "pg" },
    (lab) => {
      ({ info, bucket, expected } = lab);
    },
  );

  const MARKERS_CHECK = `checks:
      queries:
        - { name: markers, database: postgres, sql: "select string_agg(label, ',' order by id) from markers", expect: "= \${ATTEST_TEST_MARKERS}" }`;
  // the key is a reference to the read-only key, resolved by the CLI from its environment
  const config = (
    ws: string,
    prefix: string,
    key = S3_KEY_REF,
    more = MARKERS_CHECK,
    runtime = "local",
  ) => `${sandboxYaml(runtime)}
${s3StorageYaml(info, bucket, { lab: { access_key_id: key, max_attempts: 2 } })}
sources:
  - name: app-base
    type: basebackup
    storage: lab
    path: ${prefix}/base/
    wal_archive: ${prefix}/wal/
    ${more}
history: { csv: ${ws}/history.csv }
reports: { dir: ${ws}/reports }
`;

  /** Runs attest ARGS as the read-only account; the bucket must be the same afterwards. */
  const run = async (
    args: string[],
    opts: { prefix?: string; markers?: number; key?: string; more?: string; runtime?: string } = {},
  ) => {
    const markers = expected.markers
      .slice(0, opts.markers ?? expected.markers.length)
      .map((m) => m.label)
      .join(",");
    return attestOnBucket(
      bucket,
      (d) => config(d, opts.prefix ?? expected.prefix, opts.key, opts.more, opts.runtime),
      args,
      { env: { ATTEST_TEST_MARKERS: markers } },
    );
  };

  it("lists both backups from their manifests and tar heads, with the WAL continuous", async () => {
    const r = await run(["list"]);
    const src = (JSON.parse(r.stdout) as Listed).sources[0]!;
    expect(src.backups.map((b) => [b.id, b.format])).toEqual([
      [expected.earlier_backup_id, "base-tar"],
      [expected.backup_id, "base-tar-gz"],
    ]);
    const newest = src.backups[1]!;
    expect(newest).toMatchObject({
      location: `s3://${bucket}/${expected.prefix}/base/${expected.backup_id}/`,
      // STOP TIME of the backup history file archive_command uploaded
      createdAtOrigin: "label",
      pgMajor: 15,
      series: expected.system_identifier,
    });
    expect(newest.walRange?.stopWal).toBe(expected.stop_wal);
    expect(src.findings.filter((f) => f.severity !== "info")).toEqual([]);

    const c = await run(["check"]);
    expect(c.code, c.stderr.slice(-2000)).toBe(0);
  });

  it.each(selectedRuntimes())(
    "drills the newest backup to the end of the bucket's WAL and passes with every marker (%s runtime)",
    async (runtime) => {
      const r = await run(["drill", "--source", "app-base"], { runtime });
      const doc = parseRun(r);
      runs.push(doc.run.id);
      // the docker runtime leaves no container either (the shared check looks at local sandboxes)
      expect(leftovers(runtime, doc.run.id)).toEqual([]);
      const d = doc.drills[0]!;
      expect(d.runtime).toBe(runtime);
      expect(d.verdict, d.reason).toBe("pass");
      expect(d.backup.id).toBe(expected.backup_id);
      expect(d.checks.find((c) => c.name === "query: markers")?.status).toBe("pass");
      expect(Date.parse(d.reached!.timestamp!)).toBeGreaterThanOrEqual(
        Date.parse(expected.markers.at(-1)!.committedAt),
      );
      const notes = d.notes?.join("\n") ?? "";
      expect(notes).toMatch(/prefetched \d+ WAL objects .* into the sandbox's directory/);
      expect(notes).toContain("pg_verifybackup: every file matches the manifest");
    },
  );

  it("drills to a time between two markers and finds exactly the markers before it", async () => {
    // between marker 3 and marker 4 (the newest backup ended after marker 2)
    const m3 = expected.markers.find((m) => m.id === 3)!;
    const m4 = expected.markers.find((m) => m.id === 4)!;
    const at = new Date((Date.parse(m3.committedAt) + Date.parse(m4.committedAt)) / 2).toISOString();
    const r = await run(["drill", "--source", "app-base", "--target-time", at], {
      markers: expected.markers.findIndex((m) => m.id === 3) + 1,
    });
    const doc = parseRun(r);
    runs.push(doc.run.id);
    const d = doc.drills[0]!;
    expect(d.verdict, d.reason).toBe("pass");
    expect(d.checks.find((c) => c.name === "query: markers")?.status).toBe("pass");
  });

  it("select: all replays the earlier backup to the newer one's start and the newer to the archive's end", async () => {
    const r = await run(["audit", "--source", "app-base", "--no-mail"], {
      more: `select: all
    checks:
      queries:
        - { name: markers, database: postgres, sql: "select max(id) from markers", expect: ">= 1" }`,
    });
    const doc = parseRun(r);
    runs.push(doc.run.id);
    const byId = new Map(doc.drills.map((d) => [d.backup.id, d]));
    expect([...byId.keys()].sort()).toEqual([expected.earlier_backup_id, expected.backup_id].sort());
    for (const d of doc.drills) expect(d.verdict, `${d.backup.id}: ${d.reason}`).toBe("pass");
    const markerMax = (id: string) => byId.get(id)!.checks.find((c) => c.name === "query: markers")?.detail;
    // the earlier backup stops at the newer one's start: marker 2 is in, marker 3 not yet
    expect(markerMax(expected.earlier_backup_id)).toMatch(/^2 satisfies/);
    expect(markerMax(expected.backup_id)).toMatch(new RegExp(`^${expected.markers.at(-1)!.id} satisfies`));
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
  });

  it("segments an archive_command uploaded gzip-compressed (%f.gz) are listed as the segments and decompressed by restore_command", async () => {
    const prefix = "pg-gzwal";
    await copyPrefix(bucket, expected.prefix, prefix);
    for (const seg of expected.wal_after_backup) {
      const key = `${prefix}/wal/${seg}`;
      await rewriteObject(bucket, key, `${key}.gz`, (body) => gzipSync(body));
    }
    const r = await run(["audit", "--source", "app-base", "--no-mail"], { prefix });
    const doc = parseRun(r);
    runs.push(doc.run.id);
    const d = doc.drills[0]!;
    expect(d.verdict, d.reason).toBe("pass");
    expect(d.checks.find((c) => c.name === "query: markers")?.status).toBe("pass");
    expect((doc.findings ?? []).filter((f) => f.kind.startsWith("wal_"))).toEqual([]);
  });

  it("a WAL object deleted: the latest drill fails naming the segment and the static check names the gap", async () => {
    const prefix = "pg-walgap";
    await copyPrefix(bucket, expected.prefix, prefix);
    const [, gone] = expected.wal_after_backup;
    await deleteObject(bucket, `${prefix}/wal/${gone}`);
    const r = await run(["audit", "--source", "app-base", "--no-mail"], { prefix });
    const doc = parseRun(r);
    runs.push(doc.run.id);
    expect(r.code).toBe(1);
    const d = doc.drills[0]!;
    expect(d.verdict).toBe("fail");
    expect(d.reason).toContain(`WAL segment ${gone} is missing`);
    const gap = (doc.findings ?? []).find((f) => f.kind === "wal_gap");
    expect(gap?.message).toContain(`WAL ${gone} missing`);
  });

  it("a zstd base tar (the head is not read when listing: the start comes from the manifest) lists and drills", async () => {
    const prefix = "pg-zst";
    await copyPrefix(bucket, expected.prefix, prefix);
    const key = `${prefix}/base/${expected.earlier_backup_id}/base.tar`;
    await rewriteObject(bucket, key, `${key}.zst`, (tar) =>
      execFileSync("zstd", ["-q", "-c", "-3"], { input: tar, maxBuffer: 256 * 1024 * 1024 }),
    );
    const listed = await run(["list"], { prefix });
    const src = (JSON.parse(listed.stdout) as Listed).sources[0]!;
    const zstBackup = src.backups.find((b) => b.id === expected.earlier_backup_id);
    expect(zstBackup?.format).toBe("base-tar-zst");
    expect(zstBackup?.walRange?.startWal).toMatch(/^00000001/);
    // a drill of one named backup recovers to its consistency point: the first marker only
    const r = await run(["drill", "--source", "app-base", "--backup", expected.earlier_backup_id], {
      prefix,
      markers: 1,
    });
    const doc = parseRun(r);
    runs.push(doc.run.id);
    const d = doc.drills[0]!;
    expect(d.verdict, d.reason).toBe("pass");
    expect(d.notes?.join("\n")).toContain("base.tar.zst");
  });

  it("the base tar of a backup deleted: its drill fails and the listing says its data is missing", async () => {
    const prefix = "pg-nobase";
    await copyPrefix(bucket, expected.prefix, prefix);
    await deleteObject(bucket, `${prefix}/base/${expected.backup_id}/base.tar.gz`);
    const r = await run(["drill", "--source", "app-base", "--backup", expected.backup_id], { prefix });
    const doc = parseRun(r);
    runs.push(doc.run.id);
    const d = doc.drills[0]!;
    expect(d.verdict, d.reason).toBe("fail");
    expect(d.reason).toContain("no base.tar (the backup's data is missing)");
  });

  it("wrong credentials: error naming the S3 code, nothing drilled", async () => {
    const r = await run(["audit", "--source", "app-base", "--no-mail"], { key: "AKIAWRONGWRONGWRONG0" });
    expect(r.code).toBe(3);
    expect(r.stdout + r.stderr).toContain("InvalidAccessKeyId");
  });
});
