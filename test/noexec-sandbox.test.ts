/**
 * A library inside a sandbox's data directory cannot be loaded as code (the sandbox directories
 * are mounted noexec when Attest runs as root), while the system's extensions still load.
 */
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRuntime } from "../src/runtimes/local/local-runtime.js";
import type { LocalSandbox } from "../src/runtimes/local/local-sandbox.js";
import { mountPointsUnder } from "../src/runtimes/local/noexec-mounts.js";
import { withClient } from "../src/runtimes/sql.js";
import { createLogger } from "../src/util/log.js";
import { isRoot } from "../src/util/os-user.js";

const LIB = "/usr/lib/postgresql/15/lib/pg_trgm.so";
const work = mkdtempSync(join(tmpdir(), "attest-noexec-"));
chmodSync(work, 0o711);
let sandbox: LocalSandbox;

function sql(text: string): Promise<unknown[]> {
  return withClient(sandbox, "postgres", async (c) => (await c.query(text)).rows);
}

beforeAll(async () => {
  const runtime = new LocalRuntime({
    user: "attest-sandbox",
    workDir: work,
    logger: createLogger({ level: "error" }),
  });
  sandbox = (await runtime.provision({
    pgMajor: 15,
    allowNewer: true,
    labels: { run: `noexec${process.pid}`, source: "t", backup: "b" },
    mode: "init",
    inputs: [],
  })) as LocalSandbox;
}, 120_000);

afterAll(async () => {
  const dir = join(sandbox.dataDir, "..");
  await sandbox?.destroy();
  expect(mountPointsUnder(dir)).toEqual([]);
  expect(existsSync(dir)).toBe(false);
  rmSync(work, { recursive: true, force: true });
});

describe.runIf(isRoot())("noexec sandbox directory", () => {
  it("refuses to map a library copied into the data directory", async () => {
    expect(mountPointsUnder(join(sandbox.dataDir, ".."))).toContain(sandbox.dataDir);
    const so = join(sandbox.dataDir, "x.so");
    copyFileSync(LIB, so);
    chmodSync(so, 0o755);
    await expect(
      sql(`create function public.x(text, text) returns real language c strict as '${so}', 'similarity'`),
    ).rejects.toThrow(/failed to map segment|[Pp]ermission denied/);
  });

  it("still loads a system extension", async () => {
    await sql("create extension pg_trgm schema public");
    expect(
      await sql("select public.similarity('abc'::pg_catalog.text, 'abd'::pg_catalog.text) > 0 as ok"),
    ).toEqual([{ ok: true }]);
  });
});
