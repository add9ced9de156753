/**
 * The oci-volume-backups source end to end: the real CLI and the real OCI SDK against the OCI
 * emulator, real loop devices and mounts, a real PostgreSQL 15 data directory taken like
 * pg_backup_oci takes it (fixtures/build-oci-volume.sh), real crash and archive recovery.
 */
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import {
  type BackupSeed,
  createSigningKey,
  createTestKeys,
  type OciEmulator,
  type OciEmulatorOptions,
  startOciEmulator,
  type TestKeys,
} from "./oci-emulator/index.js";
import { attest, type CliResult, localSandboxesOf, ROOT, workspace } from "./support/cli.js";

const run = promisify(execFile);
const FIXTURE = join(ROOT, "fixtures", "generated", "oci-volume");
const COMPARTMENT = "ocid1.compartment.oc1..attestdrills";
const PROD = "ocid1.volume.oc1.sa-saopaulo-1.production";
const OTHER_VOLUME = "ocid1.volume.oc1.sa-saopaulo-1.other";
const AD = "Uocm:SA-SAOPAULO-1-AD-1";
const INSTANCE = "ocid1.instance.oc1.sa-saopaulo-1.verifier";
const LATEST = "ocid1.volumebackup.oc1.sa-saopaulo-1.latest";
const STALE = "ocid1.volumebackup.oc1.sa-saopaulo-1.stale";
const FAULTY = "ocid1.volumebackup.oc1.sa-saopaulo-1.faulty";
const UNTAGGED = "ocid1.volumebackup.oc1.sa-saopaulo-1.untagged";
const HOUR = 3_600_000;
const SCRIPT_TAG = { script: "pg_backup_oci.py - Ver. 1.1" };
const DEFINED = { backup: { access: "BACKUP-XXX" } };

interface Expected {
  display_name: string;
  pg_major: number;
  label: string;
  sample: Record<string, number | string>;
  markers: { crash_recovery: string[]; label_recovery: string[]; never: string[] };
}

let keys: TestKeys;
let expected: Expected;
const workspaces: string[] = [];

beforeAll(() => {
  execFileSync("bash", [join(ROOT, "fixtures", "build-oci-volume.sh"), FIXTURE], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  expected = JSON.parse(readFileSync(join(FIXTURE, "expected.json"), "utf8")) as Expected;
}, 120_000);

beforeAll(async () => {
  keys = await createTestKeys();
});

afterAll(async () => {
  await keys?.remove();
  for (const dir of workspaces) {
    expect(await mountsUnder(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** pg_backup_oci-style backups of the production volume; only the newest has content. */
function backupSeeds(now = Date.now()): BackupSeed[] {
  const daily = (id: string, hoursAgo: number, extra: Partial<BackupSeed> = {}): BackupSeed => {
    const at = new Date(now - hoursAgo * HOUR);
    const name = `backup_${at.toISOString().replace(/\D/g, "").slice(0, 14)}`;
    return {
      id: `ocid1.volumebackup.oc1.sa-saopaulo-1.${id}`,
      compartmentId: COMPARTMENT,
      volumeId: PROD,
      displayName: name,
      timeCreated: at,
      type: "INCREMENTAL",
      sourceType: "MANUAL",
      sizeInGBs: 50,
      uniqueSizeInGBs: 2,
      freeformTags: SCRIPT_TAG,
      definedTags: DEFINED,
      ...extra,
    };
  };
  return [
    daily("stale", 30 * 24, { type: "FULL", uniqueSizeInGBs: 40 }),
    daily("full", 5 * 24, { type: "FULL", uniqueSizeInGBs: 40 }),
    daily("untagged", 4 * 24, {
      displayName: "policy-daily",
      sourceType: "SCHEDULED",
      freeformTags: {},
      definedTags: {},
    }),
    daily("d3", 3 * 24),
    daily("d2", 2 * 24),
    daily("faulty", 30, { lifecycleState: "FAULTY" }),
    daily("d1", 26),
    daily("latest", 2, { displayName: expected.display_name, imagePath: join(FIXTURE, "volume.img") }),
    {
      compartmentId: COMPARTMENT,
      volumeId: OTHER_VOLUME,
      timeCreated: new Date(now - HOUR),
      freeformTags: SCRIPT_TAG,
    },
  ];
}

async function emulator(extra: Partial<OciEmulatorOptions> = {}): Promise<OciEmulator> {
  return startOciEmulator({
    trustedKeys: [keys.trustedKey],
    backups: backupSeeds(),
    volumes: [{ id: PROD, compartmentId: COMPARTMENT, availabilityDomain: AD, displayName: "pgdata" }],
    instances: [{ id: INSTANCE, compartmentId: COMPARTMENT, availabilityDomain: AD }],
    ...extra,
  });
}

interface SetupOptions {
  labels?: boolean;
  configPath?: string;
  extra?: string;
  queries?: string;
}

/** A workspace whose config points the source at `emu`; mount_root lives inside it. */
function setup(
  emu: OciEmulator,
  opts: SetupOptions = {},
): { dir: string; config: string; mountRoot: string } {
  const ws = workspace(
    (dir) => `
sandbox: { runtime: local, timeout: 10m }
history: { csv: ${dir}/history.csv }
reports: { dir: ${dir}/reports, pdf: false }
sources:
  - name: prod-volume
    type: oci-volume-backups
    oci: { config_file: ${opts.configPath ?? keys.configPath}, profile: DEFAULT, endpoint: "${emu.endpoint}" }
    compartment_id: ${COMPARTMENT}
    volume_id: ${PROD}
    expect_defined_tags: { backup: { access: BACKUP-XXX } }
    retention_days: 7
    verifier:
      instance_id: ${INSTANCE}
      availability_domain: "${AD}"
      attach: paravirtualized
      device_root: ${emu.deviceRoot}
      mount_root: ${dir}/mnt
    api_retry: { initial_delay: 50ms, max_delay: 400ms }
${opts.labels ? `    backup_labels: ${FIXTURE}/labels\n    wal_archive: ${FIXTURE}/wal\n` : ""}${opts.extra ?? ""}    checks:
      amcheck: true
      queries:
${opts.queries ?? markerQueries(expected.markers.crash_recovery)}
`,
  );
  workspaces.push(ws.dir);
  // the sandbox user reaches the clone's data directory through the workspace (mkdtemp made it 0700)
  chmodSync(ws.dir, 0o711);
  return { ...ws, mountRoot: join(ws.dir, "mnt") };
}

/** Assertions: the sample rows, and exactly `present` of the marker rows. */
function markerQueries(present: string[]): string {
  const all = [...expected.markers.label_recovery, ...expected.markers.never];
  const lines = [
    `        - { name: sample orders, database: app, sql: "select count(*) from sample.orders", expect: "= ${expected.sample["sample.orders"]}" }`,
    `        - { name: sample amounts, database: app, sql: "select sum(amount) from sample.orders", expect: "= ${expected.sample["sample.orders.amount_sum"]}" }`,
    `        - { name: pgbench accounts, database: app, sql: "select count(*) from pgbench_accounts", expect: "= ${expected.sample["public.pgbench_accounts"]}" }`,
  ];
  for (const m of new Set(all)) {
    lines.push(
      `        - { name: "marker ${m}", database: app, sql: "select count(*) from sample.markers where label = '${m}'", expect: "= ${present.includes(m) ? 1 : 0}" }`,
    );
  }
  return lines.join("\n");
}

function parseRun(r: CliResult): RunResult {
  try {
    return JSON.parse(r.stdout) as RunResult;
  } catch {
    throw new Error(
      `no JSON on stdout (exit ${r.code}): ${r.stdout.slice(0, 500)}\n${r.stderr.slice(-3000)}`,
    );
  }
}

async function mountsUnder(dir: string): Promise<string[]> {
  const { stdout } = await run("findmnt", ["-rn", "-o", "TARGET"]);
  return stdout.split("\n").filter((t) => t.startsWith(`${dir}/`));
}

/** Every line on stderr is a JSON log line (nothing printed around the logger). */
function expectJsonLines(stderr: string): void {
  const stray = stderr.split("\n").filter((line) => {
    if (!line.trim()) return false;
    try {
      JSON.parse(line);
      return false;
    } catch {
      return true;
    }
  });
  expect(stray).toEqual([]);
}

/**
 * The pid of a postgres server running on `dir`, once one runs; 0 when none started while the CLI
 * `cliPid` lived (or within 120 s): an event, not a guessed while a loaded machine can outlast.
 */
async function waitForServerOn(dir: string, cliPid: number): Promise<number> {
  // the sandbox server runs in its own pid namespace: its pid file holds the inner pid, so look
  // for the host process whose command line runs postgres on this data directory
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && alive(cliPid)) {
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
        if (/(^|\/)postgres$/.test(argv[0] ?? "") && argv.includes(join(dir, "data"))) return Number(name);
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  return 0;
}

/** Whether process `pid` exists (a zombie counts). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether a process is gone within `ms` (it was told to die: its parent is gone). */
async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  return false;
}

/** Waits until a clone is mounted under `mountRoot`; returns its mount point. */
async function waitForMount(mountRoot: string): Promise<string> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const found = (await mountsUnder(mountRoot))[0];
    if (found) return found;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`nothing was mounted under ${mountRoot} within 120 s`);
}

async function loopDevicesOf(emu: OciEmulator): Promise<string[]> {
  const { stdout } = await run("losetup", ["--list", "--noheadings", "--output", "NAME,BACK-FILE"]);
  return stdout.split("\n").filter((line) => line.includes(emu.stateDir));
}

/** The emulator shows nothing of ours alive, the host holds no mount, loop device or server. */
async function expectClean(emu: OciEmulator, mountRoot: string): Promise<void> {
  const state = emu.state();
  const clones = state.volumes.filter((v) => v.id !== PROD);
  expect(clones.length).toBeGreaterThan(0);
  for (const v of clones) expect([v.id, v.lifecycleState]).toEqual([v.id, "TERMINATED"]);
  expect(state.volumes.find((v) => v.id === PROD)?.lifecycleState).toBe("AVAILABLE");
  expect(state.attachments.filter((a) => a.lifecycleState !== "DETACHED")).toEqual([]);
  expect(state.loopDevices).toEqual([]);
  expect(await loopDevicesOf(emu)).toEqual([]);
  expect(await mountsUnder(mountRoot)).toEqual([]);
  expect(existsSync(mountRoot) ? readdirSync(mountRoot) : []).toEqual([]);
  const servers = await run("pgrep", ["-f", mountRoot]).then(
    (r) => r.stdout.trim(),
    () => "",
  );
  expect(servers).toBe("");
  expect(state.problems).toEqual([]);
}

/** No mutating call touched the production volume, a backup, or another instance. */
function expectOnlyClonesMutated(emu: OciEmulator): void {
  const created = new Set(
    emu
      .state()
      .volumes.filter((v) => v.id !== PROD)
      .map((v) => v.id),
  );
  for (const r of emu.requests.filter((x) => x.method !== "GET" && x.status < 300)) {
    expect(r.path).not.toContain(PROD);
    expect(r.path).not.toContain("volumeBackups");
    const body = (r.body ?? {}) as Record<string, unknown>;
    if (r.operation === "CreateVolume") {
      expect(body.availabilityDomain).toBe(AD);
      expect((body.freeformTags as Record<string, string>)["attest-run"]).toBeTruthy();
    } else if (r.operation === "AttachVolume") {
      expect(body.instanceId).toBe(INSTANCE);
      expect(created.has(String(body.volumeId))).toBe(true);
    } else if (r.operation === "DeleteVolume") {
      expect(created.has(r.path.split("/").pop()!)).toBe(true);
    } else {
      expect(r.operation).toBe("DetachVolume");
    }
  }
  expect(
    JSON.stringify(emu.requests.filter((x) => x.method !== "GET").map((x) => x.body ?? null)),
  ).not.toContain(PROD);
}

describe("oci-volume-backups against the OCI emulator", () => {
  it("lists backups with tags and ages, flags FAULTY, stale and untagged ones", async () => {
    await using emu = await emulator();
    const ws = setup(emu);
    const r = await attest(["list", "--config", ws.config, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      sources: Array<{
        backups: Array<{
          id: string;
          labels: Record<string, string>;
          detail?: Record<string, unknown>;
          ageSeconds: number;
          createdAtOrigin: string;
          family: string;
          format: string;
          sizeBytes: number;
        }>;
        findings: Array<{ kind: string; backupId?: string; severity: string; message: string }>;
      }>;
    };
    const src = doc.sources[0]!;
    // AVAILABLE backups of the production volume only, oldest first
    expect(src.backups.map((b) => b.id.split(".").pop())).toEqual([
      "stale",
      "full",
      "untagged",
      "d3",
      "d2",
      "d1",
      "latest",
    ]);
    const latest = src.backups.at(-1)!;
    expect(latest).toMatchObject({
      family: "snapshot",
      format: "oci-volume-backup",
      createdAtOrigin: "api",
      sizeBytes: 50 * 1024 ** 3,
    });
    expect(latest.labels).toMatchObject({ sourceType: "MANUAL", uniqueSizeInGBs: "2", pgBackupOci: "true" });
    expect(latest.detail).toMatchObject({
      kind: "oci-volume",
      type: "INCREMENTAL",
      displayName: expected.display_name,
      definedTags: DEFINED,
    });
    expect(latest.ageSeconds).toBeGreaterThanOrEqual(2 * 3600 - 5);
    expect(latest.labels.volumeId).toBe(PROD);
    expect(src.backups.find((b) => b.id === UNTAGGED)?.labels.pgBackupOci).toBeUndefined();
    const kinds = src.findings.map((f) => [f.kind, f.backupId]);
    expect(kinds).toEqual(
      expect.arrayContaining([
        ["backup_faulty", FAULTY],
        ["retention_not_enforced", STALE],
        ["missing_defined_tags", UNTAGGED],
      ]),
    );
    expect(src.findings).toHaveLength(3);
    expect(emu.requests.every((q) => q.signatureVerified && q.method === "GET")).toBe(true);
  });

  it("audit: drills the latest through clone → attach → mount → archive recovery → checks → cleanup", async () => {
    await using emu = await emulator();
    const ws = setup(emu, { labels: true, queries: markerQueries(expected.markers.label_recovery) });
    const r = await attest(["audit", "--config", ws.config, "--json"]);
    const doc = parseRun(r);
    const drill = doc.drills[0]!;
    expect(doc.drills).toHaveLength(1);
    expect([drill.verdict, drill.reason], r.stderr.slice(-3000)).toEqual(["pass", expect.any(String)]);
    expect(drill.backup.id).toBe(LATEST);
    expect(drill.sandboxMajor).toBe(expected.pg_major);
    for (const phase of ["clone", "attach", "mount", "unmount", "detach", "delete"]) {
      expect(drill.phases?.[phase], phase).toBeGreaterThan(0);
    }
    expect(drill.resources?.map((x) => [x.kind, x.created, x.deleted])).toEqual([
      ["volume", true, true],
      ["volume-attachment", true, true],
      ["mount", true, true],
    ]);
    const queries = drill.checks.filter(
      (c) => c.name.startsWith("assert") || c.name.includes("marker") || c.name.includes("sample"),
    );
    expect(queries.length).toBeGreaterThan(0);
    expect(drill.checks.filter((c) => c.status !== "pass" && c.status !== "skip")).toEqual([]);
    expect(drill.notes.join("\n")).toMatch(/backup_label placed into the data directory/);
    expect(drill.notes.join("\n")).toMatch(/PGDATA at data\/ on the clone \(PostgreSQL 15\)/);
    // the stale backup is reported: retention is not deleting
    expect(doc.findings?.map((f) => f.kind)).toContain("retention_not_enforced");
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    console.info("observed phases (ms):", JSON.stringify({ ...drill.phases, ...drill.timings }));

    expectOnlyClonesMutated(emu);
    const clone = emu.state().volumes.find((v) => v.id !== PROD)!;
    expect(clone.sourceBackupId).toBe(LATEST);
    expect(clone.freeformTags).toMatchObject({ "attest-run": doc.run.id, "attest-source": "prod-volume" });
    expect(Number(clone.freeformTags["attest-pid"])).toBeGreaterThan(0);
    await expectClean(emu, ws.mountRoot);
  });

  it("a FAULTY clone ends the drill in error and leaves nothing behind", async () => {
    await using emu = await emulator({ cloneOutcome: "faulty" });
    const ws = setup(emu);
    const r = await attest(["drill", "--config", ws.config, "--source", "prod-volume", "--json"]);
    const doc = parseRun(r);
    expect(r.code).toBe(3);
    const drill = doc.drills[0]!;
    expect(drill.verdict).toBe("error");
    expect(drill.reason).toMatch(/prepare: clone ocid1\.volume\.\S+ of backup .*latest became FAULTY/);
    expect(drill.resources).toEqual([
      expect.objectContaining({ kind: "volume", created: true, deleted: true }),
    ]);
    expect(emu.requests.some((q) => q.operation === "AttachVolume")).toBe(false);
    expectOnlyClonesMutated(emu);
    await expectClean(emu, ws.mountRoot);
  });

  it("a clone over limits.max_cloned_gb is refused before anything is created", async () => {
    await using emu = await emulator();
    const ws = setup(emu, { extra: "    limits: { max_cloned_gb: 10 }\n" });
    const r = await attest(["drill", "--config", ws.config, "--source", "prod-volume", "--json"]);
    const drill = parseRun(r).drills[0]!;
    expect(r.code).toBe(3);
    expect(drill.reason).toMatch(/would exceed limits\.max_cloned_gb \(10 GB/);
    expect(emu.requests.filter((q) => q.method !== "GET")).toEqual([]);
  });

  it("never attaches over iSCSI against the emulator (no iscsiadm to a non-loopback address)", async () => {
    await using emu = await emulator();
    const ws = setup(emu);
    writeFileSync(
      ws.config,
      readFileSync(ws.config, "utf8").replace("attach: paravirtualized", "attach: iscsi"),
    );
    const r = await attest(["drill", "--config", ws.config, "--source", "prod-volume", "--json"]);
    const drill = parseRun(r).drills[0]!;
    expect(r.code).toBe(3);
    expect(drill.reason).toMatch(/iSCSI login is never performed against an emulator endpoint/);
    expect(emu.requests.filter((q) => q.method !== "GET")).toEqual([]);
  });

  it("a 429/5xx storm is retried (each retry logged) and the drill still passes on crash recovery", async () => {
    await using emu = await emulator();
    const storm = [
      { match: { method: "GET", pathPrefix: "/volumeBackups" }, status: 429 as const, times: 2 },
      { match: { method: "POST", pathPrefix: "/volumes" }, status: 429 as const, times: 2 },
      { match: { method: "GET", pathPrefix: "/volumes/" }, status: 503 as const, times: 3 },
      { match: { method: "GET", pathPrefix: "/instances/" }, status: 502 as const, times: 1 },
      { match: { method: "POST", pathPrefix: "/volumeAttachments" }, status: 429 as const, times: 2 },
      { match: { method: "DELETE", pathPrefix: "/volumeAttachments" }, status: 500 as const, times: 1 },
      { match: { method: "DELETE", pathPrefix: "/volumes/" }, status: 429 as const, times: 2 },
    ];
    const injected = storm.reduce((n, f) => n + f.times, 0); // the emulator counts `times` down in place
    emu.faults.push(...storm);
    const ws = setup(emu);
    const r = await attest(["drill", "--config", ws.config, "--source", "prod-volume", "--json"]);
    const drill = parseRun(r).drills[0]!;
    expect([drill.verdict, drill.reason]).toEqual(["pass", expect.any(String)]);
    expect(drill.notes.join("\n")).toMatch(/crash-consistent and started by crash recovery/);
    expect(emu.requests.filter((q) => q.faultInjected)).toHaveLength(injected);
    expect(emu.faults.every((f) => f.times === 0)).toBe(true);
    const retries = r.stderr.split("\n").filter((l) => l.includes("OCI call failed, retrying"));
    expect(retries).toHaveLength(injected);
    expect(retries.join("\n")).toMatch(/TooManyRequests/);
    expectJsonLines(r.stderr);
    expect(r.code).toBe(0);
    expectOnlyClonesMutated(emu);
    await expectClean(emu, ws.mountRoot);
  });

  it("lists with explicit API-key settings whose private key is a file reference", async () => {
    await using emu = await emulator();
    const auth = `{ tenancy: ${keys.tenancyId}, user: ${keys.userId}, fingerprint: "${keys.fingerprint}", private_key: "\${file:${keys.keyPath}}", region: sa-saopaulo-1, endpoint: "${emu.endpoint}" }`;
    const ws = setup(emu);
    writeFileSync(ws.config, readFileSync(ws.config, "utf8").replace(/^ {4}oci: .*$/m, `    oci: ${auth}`));
    const r = await attest(["list", "--config", ws.config, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      sources: Array<{ backups: Array<{ id: string; location: string }> }>;
    };
    expect(doc.sources[0]!.backups.at(-1)).toMatchObject({
      id: LATEST,
      location: `oci://sa-saopaulo-1/volumeBackups/${LATEST}`,
    });
    expect(r.stdout + r.stderr).not.toContain("PRIVATE KEY");
    expect(emu.requests.every((q) => q.signatureVerified && q.keyId === keys.keyId)).toBe(true);
  });

  it("uses a named profile of an OCI config file that has no DEFAULT one; stdout stays one JSON document", async () => {
    await using emu = await emulator();
    const configFile = join(keys.dir, "named-config");
    writeFileSync(configFile, readFileSync(keys.configPath, "utf8").replace("[DEFAULT]", "[ATTEST]"), {
      mode: 0o600,
    });
    const ws = setup(emu, { configPath: configFile });
    writeFileSync(ws.config, readFileSync(ws.config, "utf8").replace("profile: DEFAULT", "profile: ATTEST"));
    const r = await attest(["list", "--config", ws.config, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(
      (JSON.parse(r.stdout) as { sources: Array<{ backups: unknown[] }> }).sources[0]?.backups,
    ).toHaveLength(7);
    expectJsonLines(r.stderr);
  });

  it("a wrong API key fails listing cleanly and says so", async () => {
    await using emu = await emulator();
    const other = createSigningKey();
    const keyFile = join(keys.dir, "wrong.pem");
    const configFile = join(keys.dir, "wrong-config");
    writeFileSync(keyFile, other.privateKeyPem, { mode: 0o600 });
    writeFileSync(
      configFile,
      readFileSync(keys.configPath, "utf8").replace(/^key_file=.*$/m, `key_file=${keyFile}`),
      { mode: 0o600 },
    );
    const ws = setup(emu, { configPath: configFile });
    const r = await attest(["list", "--config", ws.config, "--json"]);
    expect(r.code).toBe(3);
    const doc = JSON.parse(r.stdout) as { sources: Array<{ error?: string }> };
    expect(doc.sources[0]?.error).toMatch(
      /401 NotAuthenticated.*key, fingerprint, user or tenancy is wrong, or the key expired/,
    );
    expect(emu.requests).toHaveLength(1); // a 401 is not retried
    expectJsonLines(r.stderr); // the SDK's own console chatter goes through our logger
  });

  it("SIGTERM with the clone mounted: the drill ends in error and cleans up on its way out", async () => {
    await using emu = await emulator();
    const ws = setup(emu);
    let pid = 0;
    const running = attest(["drill", "--config", ws.config, "--source", "prod-volume", "--json"], {
      onSpawn: (p) => {
        pid = p;
      },
    });
    await waitForMount(ws.mountRoot);
    process.kill(pid, "SIGTERM");
    const r = await running;
    const drill = parseRun(r).drills[0]!;
    expect(r.code).toBe(3);
    expect(drill.verdict).toBe("error");
    expect(drill.reason).toMatch(/aborted during \w+: received SIGTERM/);
    expect(drill.resources?.every((x) => x.deleted)).toBe(true);
    expectOnlyClonesMutated(emu);
    await expectClean(emu, ws.mountRoot);
  });

  it("a drill that times out while the clone hydrates deletes the clone", async () => {
    await using emu = await emulator({ hydrationFactor: 40 }); // 200 ms × 40 = 8 s of PROVISIONING
    const ws = setup(emu, { extra: "    timeout: 2s\n" });
    const r = await attest(["drill", "--config", ws.config, "--source", "prod-volume", "--json"]);
    const drill = parseRun(r).drills[0]!;
    expect(r.code).toBe(3);
    expect(drill.reason).toMatch(/timed out after 2\.0s during prepare/);
    expect(drill.resources).toEqual([expect.objectContaining({ kind: "volume", deleted: true })]);
    expect(drill.timings.totalMs).toBeLessThan(30_000);
    await expectClean(emu, ws.mountRoot);
  });

  it("a run killed with the clone attached and mounted is swept by the next run", async () => {
    await using emu = await emulator();
    const ws = setup(emu);
    let pid = 0;
    const killed = attest(["drill", "--config", ws.config, "--source", "prod-volume", "--json"], {
      onSpawn: (p) => {
        pid = p;
      },
    });
    const mountPoint = await waitForMount(ws.mountRoot);
    // killed while the sandbox server runs on the clone
    // the copy carries the snapshotted server's stale postmaster.pid: wait for the sandbox's own
    const serverPid = await waitForServerOn(mountPoint, pid);
    process.kill(pid, "SIGKILL");
    const first = await killed;
    expect(first.code).toBeNull();

    const left = emu.state();
    expect(left.volumes.filter((v) => v.id !== PROD && v.lifecycleState === "AVAILABLE")).toHaveLength(1);
    expect(left.attachments.filter((a) => a.lifecycleState === "ATTACHED")).toHaveLength(1);
    expect(await mountsUnder(ws.mountRoot)).toEqual([mountPoint]);
    expect(serverPid, "the sandbox server never started on the clone").toBeGreaterThan(0);
    // bubblewrap's --die-with-parent: the sandbox server never outlives its CLI
    expect(await goneWithin(serverPid, 10_000), "the sandbox server outlived its CLI").toBe(true);

    const r = await attest(["drill", "--config", ws.config, "--source", "prod-volume", "--json"]);
    const doc = parseRun(r);
    expect(r.stderr).toMatch(/removed leftover mount/);
    expect(r.stderr).toMatch(/removed leftover clone/);
    expect([doc.drills[0]?.verdict, doc.drills[0]?.reason]).toEqual(["pass", expect.any(String)]);
    expect(r.code).toBe(0);
    expect(localSandboxesOf(pid)).toEqual([]);
    expect(emu.state().volumes.filter((v) => v.id !== PROD)).toHaveLength(2);
    expectOnlyClonesMutated(emu);
    await expectClean(emu, ws.mountRoot);
  });
});
