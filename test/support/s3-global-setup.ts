/**
 * Vitest global set-up for the real S3 server: sweeps what a crashed run left, hands every test
 * worker this run's cluster directory, and stops the cluster (if a test started it) at the end.
 * The cluster starts lazily, on the first `s3Cluster()` call (test/support/s3.ts), so a run that
 * needs no object storage pays nothing.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { S3_DIR_PREFIX, stopS3Cluster, sweepS3Leftovers } from "./s3-cluster.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** This run's S3 cluster directory (the cluster may not be started yet). */
    s3Home: string;
  }
}

/** Prepares the run's cluster directory; the returned teardown stops the cluster by pid. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const swept = await sweepS3Leftovers();
  if (swept.length > 0) process.stderr.write(`s3: swept leftovers of crashed runs: ${swept.join(", ")}\n`);
  const home = mkdtempSync(join(tmpdir(), S3_DIR_PREFIX));
  writeFileSync(join(home, "owner.pid"), String(process.pid));
  project.provide("s3Home", home);
  return () => stopS3Cluster(home);
}
