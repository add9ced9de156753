/**
 * What the object-storage tests of the real CLI share: the `storage:` block naming a test bucket,
 * the read-only account's environment, the fixtures the writer uploads, a run's JSON, and the
 * checks that a run changed nothing in the bucket and left nothing behind.
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import type { RunResult } from "../../src/model.js";
import { attest, type CliResult, localSandboxes, ROOT, workspace } from "./cli.js";
import { bucketSnapshot, type S3ClusterInfo, s3Cluster } from "./s3.js";

/** The config's reference to the read-only access key, resolved by the CLI from `s3ReaderEnv`. */
export const S3_KEY_REF = "$" + "{ATTEST_TEST_S3_KEY}";
/** The config's reference to the read-only secret, resolved by the CLI from `s3ReaderEnv`. */
export const S3_SECRET_REF = "$" + "{ATTEST_TEST_S3_SECRET}";

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
    for (const [field, value] of Object.entries(s3StoreFields(info, bucket, over)))
      if (value !== undefined)
        lines.push(`    ${field}: ${typeof value === "string" ? JSON.stringify(value) : String(value)}`);
  }
  return lines.join("\n");
}

/**
 * Runs fixtures/build-s3-backups.sh KIND OUTDIR PREFIX as the writer into `bucket` and resolves to
 * the expected.json it wrote.
 */
export async function buildS3Backups<T>(
  info: S3ClusterInfo,
  bucket: string,
  build: { kind: "basebackup" | "barman-cloud" | "pgbackrest"; outDir: string; prefix: string },
  timeoutMs = 280_000,
): Promise<T> {
  const child = spawn(
    "bash",
    [join(ROOT, "fixtures", "build-s3-backups.sh"), build.kind, build.outDir, build.prefix],
    {
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
    },
  );
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (c, s) => resolve([c, s]));
  });
  if (code !== 0)
    throw new Error(`build-s3-backups.sh ${build.kind} ended with ${code ?? signal} (its stderr is above)`);
  return JSON.parse(readFileSync(join(build.outDir, "expected.json"), "utf8")) as T;
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
