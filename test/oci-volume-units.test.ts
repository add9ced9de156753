/**
 * The oci-volume-backups source's pure parts: configuration rules, error classification and
 * retries, leftover detection, PGDATA discovery, clone limits, static findings.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../src/config/load.js";
import type { Backup } from "../src/model.js";
import { CloneLimits } from "../src/sources/oci-volume-backups/clone-limits.js";
import { describeBackup } from "../src/sources/oci-volume-backups/describe-backup.js";
import { findDataDir } from "../src/sources/oci-volume-backups/host-mount.js";
import { inspectBackups } from "../src/sources/oci-volume-backups/inspect-backups.js";
import type { OciVolumeBackup } from "../src/sources/oci-volume-backups/oci-api.js";
import { callOci, classifyOciError, OciCallError } from "../src/sources/oci-volume-backups/oci-retry.js";
import type { OciVolumeBackupsSourceConfig } from "../src/sources/oci-volume-backups/oci-volume-config.js";
import { leftoverVerdict } from "../src/sources/oci-volume-backups/sweep-leftovers.js";
import { VerifierError } from "../src/util/errors.js";
import { type Logger, silentLogger } from "../src/util/log.js";
import { processStartTime } from "../src/util/os-user.js";

const dir = mkdtempSync(join(tmpdir(), "attest-oci-units-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ociConfig = join(dir, "oci-config");
writeFileSync(ociConfig, "[DEFAULT]\n");
const keyFile = join(dir, "key.pem");
writeFileSync(keyFile, "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n");

const yaml = (oci: string, extra = "") => `
sources:
  - name: prod
    type: oci-volume-backups
    oci: ${oci}
    compartment_id: ocid1.compartment.oc1..c
    volume_id: ocid1.volume.oc1..v
    verifier: { instance_id: ocid1.instance.oc1..i, availability_domain: "AD-1" }
${extra}`;
const parse = (text: string, env: NodeJS.ProcessEnv = {}) => parseConfig(text, join(dir, "attest.yml"), env);
const errorOf = (text: string, env: NodeJS.ProcessEnv = {}) => {
  try {
    parse(text, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues.join("; ");
  }
  throw new Error("expected a config error");
};
const cfgOf = (extra = ""): OciVolumeBackupsSourceConfig =>
  parse(yaml(`{ config_file: ${ociConfig} }`, extra)).sources[0] as OciVolumeBackupsSourceConfig;

describe("oci-volume-backups configuration", () => {
  it("fills defaults: profile, verifier paths, limits, retries", () => {
    const c = cfgOf();
    expect(c.oci).toMatchObject({ config_file: ociConfig, profile: "DEFAULT" });
    expect(c.verifier).toMatchObject({
      attach: "paravirtualized",
      device_root: "/dev/oracleoci",
      mount_root: "/var/lib/attest/mnt",
      mount_options: "nodev,nosuid,noexec,noatime",
    });
    expect(c.limits).toMatchObject({ max_concurrent_clones: 1, clone_timeout: 3_600_000 });
    expect(c.api_retry).toMatchObject({ max_attempts: 8, initial_delay: 1000, max_delay: 30_000 });
    expect(c).toMatchObject({ require_full: false, superuser: "postgres", retention_grace: 86_400_000 });
  });

  it("accepts a private key only as a reference, never inline", () => {
    const explicit = (key: string) =>
      `{ tenancy: ocid1.tenancy.oc1..t, user: ocid1.user.oc1..u, fingerprint: "aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99", region: sa-saopaulo-1, private_key: ${key} }`;
    const c = parse(yaml(explicit(`"\${file:${keyFile}}"`))).sources[0] as OciVolumeBackupsSourceConfig;
    expect(c.oci.private_key).toContain("BEGIN PRIVATE KEY");
    expect(c.oci.config_file).toBeUndefined();
    expect(
      errorOf(yaml(explicit('"-----BEGIN PRIVATE KEY-----\\nMIIC\\n-----END PRIVATE KEY-----"'))),
    ).toMatch(/sources\[0\]\.oci\.private_key: write a reference/);
  });

  it.each([
    [
      `{ config_file: ${ociConfig}, endpoint: "https://iaas.sa-saopaulo-1.oraclecloud.com" }`,
      /oci\.endpoint: only a loopback emulator URL/,
    ],
    [`{ config_file: ${dir}/missing }`, /oci\.config_file: file does not exist/],
    [
      `{ tenancy: ocid1.tenancy.oc1..t, key_file: ${keyFile} }`,
      /oci\.user: required.*oci\.fingerprint: required.*oci\.region: required/,
    ],
    [
      `{ config_file: ${ociConfig}, tenancy: ocid1.tenancy.oc1..t }`,
      /oci\.config_file: give either config_file\/profile or tenancy/,
    ],
  ])("rejects oci: %s", (oci, message) => {
    expect(errorOf(yaml(oci))).toMatch(message);
  });

  it("wants absolute verifier paths and a safe data_subdir", () => {
    const bad = yaml(`{ config_file: ${ociConfig} }`, "    backup_labels: labels\n").replace(
      'availability_domain: "AD-1" }',
      'availability_domain: "AD-1", mount_root: mnt, data_subdir: ../etc }',
    );
    const message = errorOf(bad);
    expect(message).toMatch(/verifier\.mount_root: must be an absolute path/);
    expect(message).toMatch(/verifier\.data_subdir: a path inside the volume/);
    // a relative backup_labels is resolved against the config file's folder, like every path
    expect(message).not.toMatch(/backup_labels: must be an absolute path/);
  });
});

describe("OCI calls", () => {
  const policy = { maxAttempts: 4, initialDelayMs: 10, maxDelayMs: 40, callTimeoutMs: 1000 };
  const warnings: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (m, f) => warnings.push(`${m} ${JSON.stringify(f)}`) };
  const instant = { now: () => Date.now(), sleep: async () => {} };
  const sdkError = (statusCode: number, serviceCode: string) =>
    Object.assign(new Error(`${serviceCode} happened`), { statusCode, serviceCode });

  it("classifies throttling, server errors and network failures as transient", () => {
    expect(classifyOciError(sdkError(429, "TooManyRequests")).transient).toBe(true);
    expect(classifyOciError(sdkError(503, "ServiceUnavailable")).transient).toBe(true);
    const refused = new TypeError("fetch failed", {
      cause: Object.assign(new Error("x"), { code: "ECONNREFUSED" }),
    });
    expect(classifyOciError(refused)).toMatchObject({
      transient: true,
      text: expect.stringMatching(/ECONNREFUSED/),
    });
    for (const [s, c] of [
      [401, "NotAuthenticated"],
      [404, "NotAuthorizedOrNotFound"],
      [400, "InvalidParameter"],
      [409, "IncorrectState"],
    ] as const) {
      expect(classifyOciError(sdkError(s, c))).toMatchObject({ transient: false, status: s, code: c });
    }
    expect(classifyOciError(new Error("Invalid private key")).transient).toBe(false);
  });

  it("retries transient failures, logging each retry, then succeeds", async () => {
    warnings.length = 0;
    let calls = 0;
    const value = await callOci(
      "ListVolumeBackups",
      async () => {
        calls++;
        if (calls < 3)
          throw sdkError(calls === 1 ? 429 : 502, calls === 1 ? "TooManyRequests" : "BadGateway");
        return "ok";
      },
      policy,
      { logger, clock: instant },
    );
    expect([value, calls]).toEqual(["ok", 3]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(
      /OCI call failed, retrying .*"operation":"ListVolumeBackups","attempt":1.*TooManyRequests/,
    );
  });

  it("gives up after max_attempts, and never retries a permanent error", async () => {
    let calls = 0;
    const storm = callOci(
      "GetVolume",
      async () => {
        calls++;
        throw sdkError(429, "TooManyRequests");
      },
      policy,
      { logger, clock: instant },
    );
    await expect(storm).rejects.toThrow(/OCI GetVolume still failing after 4 attempts: 429 TooManyRequests/);
    expect(calls).toBe(4);

    calls = 0;
    const denied = callOci(
      "ListVolumeBackups",
      async () => {
        calls++;
        throw sdkError(401, "NotAuthenticated");
      },
      policy,
      { logger, clock: instant },
    );
    await expect(denied).rejects.toBeInstanceOf(OciCallError);
    await expect(denied).rejects.toThrow(
      /401 NotAuthenticated.*the key, fingerprint, user or tenancy is wrong, or the key expired/,
    );
    expect(calls).toBe(1);
  });

  it("abandons a call that does not answer within call_timeout and retries it", async () => {
    let calls = 0;
    const value = await callOci(
      "GetVolume",
      () => (++calls === 1 ? new Promise<string>(() => {}) : Promise.resolve("second")),
      { ...policy, callTimeoutMs: 50 },
      { logger, clock: instant },
    );
    expect(value).toBe("second");
  });
});

describe("leftover clones", () => {
  const now = Date.now();
  const volume = (tags: Record<string, string>, ageMs: number) => ({
    id: "ocid1.volume.oc1..clone",
    displayName: "attest-x-1",
    lifecycleState: "AVAILABLE",
    availabilityDomain: "AD-1",
    compartmentId: "c",
    timeCreated: new Date(now - ageMs).toISOString(),
    freeformTags: { "attest-run": "r", ...tags },
  });

  it("tells dead runs from live ones", () => {
    const me = {
      "attest-host": hostname(),
      "attest-pid": String(process.pid),
      "attest-pid-start": processStartTime(process.pid) ?? "",
    };
    expect(leftoverVerdict(volume(me, 60_000), now).dead).toBe(false);
    expect(leftoverVerdict(volume({ ...me, "attest-pid-start": "1" }, 60_000), now)).toMatchObject({
      dead: true,
      why: expect.stringMatching(/is gone/),
    });
    expect(leftoverVerdict(volume({ ...me, "attest-pid": "999999999" }, 60_000), now).dead).toBe(true);
    expect(leftoverVerdict(volume({ "attest-host": "elsewhere", "attest-pid": "1" }, 60_000), now).dead).toBe(
      false,
    );
    expect(
      leftoverVerdict(volume({ "attest-host": "elsewhere", "attest-pid": "1" }, 25 * 3_600_000), now).dead,
    ).toBe(true);
    expect(leftoverVerdict(volume(me, 25 * 3_600_000), now).dead).toBe(true);
  });
});

describe("PGDATA on a clone", () => {
  const volumeRoot = (layout: string[]) => {
    const root = mkdtempSync(join(dir, "vol-"));
    for (const d of layout) {
      // what initdb leaves: PG_VERSION, global/pg_control, and a PG_VERSION in each database dir
      mkdirSync(join(root, d, "global"), { recursive: true });
      mkdirSync(join(root, d, "base", "1"), { recursive: true });
      writeFileSync(join(root, d, "PG_VERSION"), "15\n");
      writeFileSync(join(root, d, "base", "1", "PG_VERSION"), "15\n");
      writeFileSync(join(root, d, "global", "pg_control"), "");
    }
    mkdirSync(join(root, "lost+found"));
    return root;
  };

  it("finds it at the root, one level down, or where data_subdir says", () => {
    const atRoot = volumeRoot([""]);
    expect(findDataDir(atRoot, undefined)).toEqual({ dataDir: atRoot, subdir: "", pgMajor: 15 });
    const below = volumeRoot(["pgdata"]);
    expect(findDataDir(below, undefined)).toMatchObject({ dataDir: join(below, "pgdata"), subdir: "pgdata" });
    const deep = volumeRoot(["pg/15/main"]);
    expect(findDataDir(deep, "pg/15/main").dataDir).toBe(join(deep, "pg/15/main"));
  });

  it("finds Debian's layouts (15/main, postgresql/15/main) without data_subdir", () => {
    const two = volumeRoot(["15/main"]);
    expect(findDataDir(two, undefined)).toEqual({
      dataDir: join(two, "15/main"),
      subdir: "15/main",
      pgMajor: 15,
    });
    const three = volumeRoot(["postgresql/15/main"]);
    mkdirSync(join(three, "postgresql", "15", "main-old-empty"), { recursive: true });
    expect(findDataDir(three, undefined).subdir).toBe("postgresql/15/main");
    // a PG_VERSION without global/pg_control (a database dir, a half-copied tree) is not PGDATA
    const half = volumeRoot([]);
    mkdirSync(join(half, "var", "base", "1"), { recursive: true });
    writeFileSync(join(half, "var", "base", "1", "PG_VERSION"), "15\n");
    expect(() => findDataDir(half, undefined)).toThrow(VerifierError);
  });

  it("says what is wrong when there is none, or several", () => {
    // a layout Attest does not know proves nothing about the backup: error, naming where it looked
    const empty = volumeRoot([]);
    mkdirSync(join(empty, "srv", "db"), { recursive: true });
    expect(() => findDataDir(empty, undefined)).toThrow(VerifierError);
    expect(() => findDataDir(empty, undefined)).toThrow(
      /no PostgreSQL data directory \(PG_VERSION and global\/pg_control\) on the clone within 4 levels; searched \/, \/srv, \/srv\/db;/,
    );
    const tooDeep = volumeRoot(["a/b/c/d/e"]);
    expect(() => findDataDir(tooDeep, undefined)).toThrow(/within 4 levels/);
    expect(() => findDataDir(volumeRoot(["a", "b"]), undefined)).toThrow(
      /several data directories on the clone \(a, b\); set verifier\.data_subdir/,
    );
    expect(() => findDataDir(volumeRoot(["a"]), "b")).toThrow(VerifierError);
    expect(() => findDataDir(volumeRoot(["a"]), "b")).toThrow(/no PostgreSQL data directory at b/);
  });
});

describe("clone limits", () => {
  it("lets max_concurrent_clones clones live at once; others wait their turn", async () => {
    const limits = new CloneLimits(1);
    const first = await limits.acquire(50, "a");
    let secondIn = false;
    const second = limits.acquire(50, "b").then((release) => {
      secondIn = true;
      return release;
    });
    await new Promise((res) => setTimeout(res, 20));
    expect(secondIn).toBe(false);
    first();
    first(); // a second release is a no-op
    (await second)();
    expect(secondIn).toBe(true);
    expect(limits.clonedGb).toBe(100);
  });

  it("refuses what would pass max_cloned_gb, and stops waiting on abort", async () => {
    const limits = new CloneLimits(1, 80);
    const held = await limits.acquire(50, "backup a");
    await expect(limits.acquire(40, "backup b")).rejects.toThrow(
      /cloning backup b \(40 GB\) would exceed limits\.max_cloned_gb \(80 GB; 50 GB cloned/,
    );
    const ac = new AbortController();
    const waiting = limits.acquire(10, "backup c", ac.signal);
    ac.abort(new Error("stop"));
    await expect(waiting).rejects.toThrow("stop");
    held();
  });
});

describe("static findings", () => {
  const cfg = cfgOf(
    `    retention_days: 7\n    require_full: true\n    expect_defined_tags: { backup: { access: BACKUP-XXX } }\n    backup_labels: ${dir}\n`,
  );
  const backup = (id: string, daysAgo: number, extra: Partial<OciVolumeBackup> = {}): Backup =>
    describeBackup(
      {
        id: `ocid1.volumebackup.oc1..${id}`,
        displayName: id,
        lifecycleState: "AVAILABLE",
        timeCreated: new Date(Date.now() - daysAgo * 86_400_000).toISOString(),
        type: "INCREMENTAL",
        sizeInGBs: 50,
        definedTags: { backup: { access: "BACKUP-XXX" } },
        ...extra,
      },
      cfg,
      "sa-saopaulo-1",
    );

  it("labels pg_backup_oci backups and finds their kept backup_label by name or OCID", () => {
    writeFileSync(
      join(dir, "backup_20260101030000.backup_label"),
      "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n",
    );
    writeFileSync(join(dir, "ocid1.volumebackup.oc1..byid.backup_label"), "START WAL LOCATION: 0/2000028\n");
    const byName = backup("backup_20260101030000", 1);
    expect(byName.labels).toMatchObject({ pgBackupOci: "true" });
    expect(byName.detail).toMatchObject({ labelFile: join(dir, "backup_20260101030000.backup_label") });
    const byTag = backup("byid", 1, { freeformTags: { script: "pg_backup_oci.py - Ver. 1.1" } });
    expect(byTag.labels).toMatchObject({ pgBackupOci: "true" });
    expect(byTag.detail).toMatchObject({ labelFile: join(dir, "ocid1.volumebackup.oc1..byid.backup_label") });
    expect(backup("nightly", 1).labels.pgBackupOci).toBeUndefined();
    expect(byName).toMatchObject({
      family: "snapshot",
      createdAtOrigin: "api",
      series: cfg.volume_id,
      sizeBytes: 50 * 1024 ** 3,
    });
  });

  it("flags retention that stopped deleting, a chain with no FULL, and missing tags", () => {
    const findings = inspectBackups(
      [backup("old", 8.5), backup("kept", 7.5), backup("untagged", 1, { definedTags: {} })],
      cfg,
      Date.now(),
    );
    expect(findings.map((f) => [f.kind, f.backupId?.split("..")[1], f.severity])).toEqual([
      ["retention_not_enforced", "old", "critical"],
      ["no_full_backup", undefined, "warning"],
      ["missing_defined_tags", "untagged", "warning"],
    ]);
    expect(findings[0]?.message).toMatch(
      /8d 12h old and still AVAILABLE; retention_days is 7 \(\+1d grace\)/,
    );
    expect(inspectBackups([backup("full", 1, { type: "FULL" })], cfg, Date.now())).toEqual([]);
  });
});
