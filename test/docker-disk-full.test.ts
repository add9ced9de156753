/**
 * A sandbox that runs out of disk mid-restore: the drill is `error` (the verifier's sandbox
 * was too small), not `fail` (the backup is fine), with the reason, and nothing stays.
 */
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import { attest, DUMPS, workspace } from "./support/cli.js";
import { leftovers } from "./support/runtimes.js";

describe("docker sandbox with a full disk", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("ends a restore that fills the sandbox's disk as error, naming the cause, and leaves nothing", async () => {
    // initdb fits in 40 MiB; the restored database does not
    const ws = workspace(
      (dir) => `
sandbox: { runtime: docker, docker: { image: "attest/postgres:{major}", tmpfs: 40m } }
sources: [{ name: app, type: dump-dir, path: ${DUMPS}/good, include: ["app_20261120T0300.dump"] }]
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports, pdf: false }
`,
    );
    dirs.push(ws.dir);
    const r = await attest(["drill", "--config", ws.config, "--source", "app", "--json", "--no-mail"]);
    const doc = JSON.parse(r.stdout) as RunResult;
    expect(r.code).toBe(3);
    const d = doc.drills[0]!;
    expect(d.verdict).toBe("error");
    expect(d.reason).toMatch(
      /sandbox ran out of disk space during (provision|restore): .*(No space left on device|could not extend file)/,
    );
    expect(leftovers("docker", doc.run.id)).toEqual([]);
  });
});
