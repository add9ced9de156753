/**
 * What the object-storage tests of the real CLI share: the `storage:` block naming a test bucket,
 * the read-only account's environment, the fixtures the writer uploads, a run's JSON, and the
 * checks that a run changed nothing in the bucket and left nothing behind.
 */
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import type { RunResult } from "../../src/model.js";
import { attest, type CliResult, localSandboxes, ROOT, workspace } from "./cli.js";
import { bucketSnapshot, createTestBucket, deleteTestBucket, type S3ClusterInfo, s3Cluster } from "./s3.js";

/** The config's reference to the read-only access key, resolved by the CLI from `s3ReaderEnv`. */
export const S3_KEY_REF = "$" + "{ATTEST_TEST_S3_KEY}";
/** The config's reference to the read-only secret, resolved by the CLI from `s3ReaderEnv`. */
const S3_SECRET_REF = "$" + "{ATTEST_TEST_S3_SECRET}";

/** The environment that gives `S3_KEY_REF` and `S3_SECRET_REF` the read-only account's keys. */
export function s3ReaderEnv(info: S3ClusterInfo): Record<string, string> {
  return { ATTEST_TEST_S3_KEY: info.reader.accessKeyId, ATTEST_TEST_S3_SECRET: info.reader.secretAccessKey };
}

/** The config fields of an S3 store on `bucket` (read-only keys as ${ENV} references), `over` on top. */
export function s3StoreFields(
  info: S3ClusterInfo,
  bucket: string,
  over: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    type: "s3",
    endpoint: info.httpsEndpoint,
    region: info.region,
    bucket,
    path_style: true,
    access_key_id: S3_KEY_REF,
    secret_access_key: S3_SECRET_REF,
    ca_file: info.caFile,
    ...over,
  };
}

/**
 * A `storage:` block with one S3 store on `bucket` per entry of `stores` (its name and its fields
 * over `s3StoreFields`'s); one store `lab` by default.
 */
export function s3StorageYaml(
  info: S3ClusterInfo,
  bucket: string,
  stores: Record<string, Record<string, unknown>> = { lab: {} },
): string {
  const lines = ["storage:"];
  for (const [name, over] of Object.entries(stores)) {
    lines.push(`  ${name}:`);
    // strings double-quoted (JSON is valid YAML there): a ${ENV} reference or a path stays one scalar
    for (const [field, value] of Object.entries(s3StoreFields(info, bucket, over)))
      if (value !== undefined)
        lines.push(`    ${field}: ${typeof value === "string" ? JSON.stringify(value) : String(value)}`);
  }
  return lines.join("\n");
}

/** A test bucket with a scratch directory beside it, for the tests of one `describe`. */
export interface ScratchBucket {
  readonly info: S3ClusterInfo;
  readonly bucket: string;
  readonly dir: string;
}

/** The backup families fixtures/build-s3-backups.sh writes. */
export type S3BackupsKind = "basebackup" | "barman-cloud" | "pgbackrest";

/**
 * For the enclosing `describe`: a scratch bucket `fill`ed before its tests; after them, nothing
 * left of the runs whose ids the tests push to `runs` (expectNoLeftovers), and the bucket and the
 * directory deleted.
 */
export function useScratchBucket(
  label: string,
  fill: (lab: ScratchBucket) => Promise<void> | void,
): { runs: string[] } {
  const runs: string[] = [];
  let lab: ScratchBucket | undefined;
  beforeAll(async () => {
    const info = await s3Cluster();
    const bucket = await createTestBucket(label);
    lab = { info, bucket, dir: mkdtempSync(join(tmpdir(), `${label}-`)) };
    await fill(lab);
  });
  afterAll(async () => {
    try {
      expectNoLeftovers(runs);
    } finally {
      if (lab) {
        await deleteTestBucket(lab.bucket);
        rmSync(lab.dir, { recursive: true, force: true });
      }
    }
  });
  return { runs };
}

/**
 * Runs fixtures/build-s3-backups.sh KIND as the writer into the scratch bucket under `prefix`
 * (its output in `dir/KIND`), and resolves to the expected.json it wrote.
 */
export async function buildS3Backups<T>(
  lab: ScratchBucket,
  kind: S3BackupsKind,
  prefix: string,
  timeoutMs = 280_000,
): Promise<T> {
  const { info, bucket } = lab;
  const outDir = join(lab.dir, kind);
  const child = spawn("bash", [join(ROOT, "fixtures", "build-s3-backups.sh"), kind, outDir, prefix], {
    stdio: ["ignore", "ignore", "inherit"],
    timeout: timeoutMs,
    env: {
      PATH: process.env.PATH,
      S3_ENDPOINT: info.httpsEndpoint,
      S3_REGION: info.region,
      S3_BUCKET: bucket,
      S3_ACCESS_KEY_ID: info.writer.accessKeyId,
      S3_SECRET_ACCESS_KEY: info.writer.secretAccessKey,
      S3_CA_FILE: info.caFile,
    },
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (c, sig) => resolve([c, sig]));
  });
  if (code !== 0)
    throw new Error(`build-s3-backups.sh ${kind} ended with ${code ?? signal} (its stderr is above)`);
  return JSON.parse(readFileSync(join(outDir, "expected.json"), "utf8")) as T;
}

/**
 * For the enclosing `describe`: a scratch bucket holding the backups build-s3-backups.sh KIND
 * writes under `prefix`, handed to `ready` with what the builder expected (see useScratchBucket).
 */
export function useS3Backups<T>(
  build: { label: string; kind: S3BackupsKind; prefix: string; timeoutMs?: number },
  ready: (lab: ScratchBucket & { expected: T }) => Promise<void> | void,
): { runs: string[] } {
  return useScratchBucket(build.label, async (lab) => {
    const expected = await buildS3Backups<T>(lab, build.kind, build.prefix, build.timeoutMs);
    await ready({ ...lab, expected });
  });
}

/**
 * Writes `dir/NAME`, a pgbackrest.conf (stanza `demo`, owner-only like any file with keys) for the
 * repository under `/repoPath` of the scratch bucket as the read-only account (or with `secret`),
 * the endpoint named `host` (its address by default); returns its path.
 */
export function writePgbackrestConf(
  lab: ScratchBucket,
  name: string,
  repoPath: string,
  opts: { host?: string; secret?: string } = {},
): string {
  const { info, bucket, dir } = lab;
  const { hostname, port } = new URL(info.httpsEndpoint);
  copyFileSync(info.caFile, join(dir, "ca.crt"));
  const file = join(dir, name);
  writeFileSync(
    file,
    [
      "[global]",
      "repo1-type=s3",
      `repo1-path=/${repoPath}`,
      `repo1-s3-endpoint=${opts.host ?? hostname}`,
      `repo1-storage-port=${port}`,
      `repo1-s3-bucket=${bucket}`,
      `repo1-s3-region=${info.region}`,
      "repo1-s3-uri-style=path",
      `repo1-s3-key=${info.reader.accessKeyId}`,
      `repo1-s3-key-secret=${opts.secret ?? info.reader.secretAccessKey}`,
      `repo1-storage-ca-file=${join(dir, "ca.crt")}`,
      "",
      "[demo]",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return file;
}

/** The run document of a CLI run, or a failure that shows what the CLI said instead. */
export function parseRun(r: CliResult): RunResult {
  let doc: RunResult | undefined;
  try {
    doc = JSON.parse(r.stdout) as RunResult;
  } catch {
    doc = undefined;
  }
  if (!doc?.run)
    throw new Error(
      `attest exited ${r.code} without a run document: ${r.stdout.slice(0, 2000)} ${r.stderr.slice(-3000)}`,
    );
  return doc;
}

/**
 * Runs `attest ARGS --config <a workspace written from yaml> --json` with the read-only account's
 * environment, and asserts the bucket lists the same afterwards (by `listing`, the writer's
 * snapshot by default) and the secret is in nothing the CLI printed.
 */
export async function attestOnBucket(
  bucket: string,
  yaml: (dir: string) => string,
  args: string[],
  opts: {
    env?: Record<string, string>;
    listing?: (bucket: string) => Promise<string[]>;
    /** Called with the workspace directory (history, reports) before it is removed. */
    readWorkspace?: (dir: string) => void;
  } = {},
): Promise<CliResult> {
  const info = await s3Cluster();
  const listing = opts.listing ?? bucketSnapshot;
  const ws = workspace(yaml);
  try {
    const before = await listing(bucket);
    const r = await attest([...args, "--config", ws.config, "--json"], {
      env: { ...s3ReaderEnv(info), ...opts.env },
    });
    expect(await listing(bucket)).toEqual(before);
    expect(r.stdout + r.stderr).not.toContain(info.reader.secretAccessKey);
    opts.readWorkspace?.(ws.dir);
    return r;
  } finally {
    rmSync(ws.dir, { recursive: true, force: true });
  }
}

/** Asserts that no sandbox directory of these runs is left, and no process running in one. */
export function expectNoLeftovers(runIds: readonly string[]): void {
  for (const id of runIds) expect(localSandboxes(id), `sandboxes of run ${id}`).toEqual([]);
  const ps = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
  // a sandbox directory names its run
  expect(ps.split("\n").filter((l) => runIds.some((id) => l.includes(`attest-${id}-`)))).toEqual([]);
}
