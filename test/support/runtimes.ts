/** The runtimes the contract suites loop over, filterable with ATTEST_RUNTIMES=local,docker. */
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { afterAll, expect } from "vitest";
import type { RunResult } from "../../src/model.js";
import { createDockerRuntime } from "../../src/runtimes/docker/docker-runtime.js";
import { LocalRuntime } from "../../src/runtimes/local/local-runtime.js";
import type { Runtime } from "../../src/runtimes/runtime.js";
import { createLogger } from "../../src/util/log.js";
import { attest, type CliResult, localSandboxes, workspace } from "./cli.js";

/**
 * A runtime of `runtime` whose sandboxes lie in `work`, as the tests of one sandbox make it: the
 * sandbox account for a local one; the offline image, no network and no pull for a container.
 */
export async function sandboxRuntime(
  runtime: "local" | "docker",
  work: string,
  maxProcesses = 1024,
): Promise<Runtime> {
  const logger = createLogger({ level: "error" });
  if (runtime === "local") return new LocalRuntime({ user: "attest-sandbox", workDir: work, logger });
  return createDockerRuntime(
    {
      image: "attest/postgres:{major}",
      network: "none",
      tmpfs: false,
      pull: false,
      max_processes: maxProcesses,
      work_dir: work,
    },
    logger,
  );
}

/** Every runtime this build has. */
export const ALL_RUNTIMES = ["local", "docker"] as const;

/** Runtimes selected for this test run. */
export function selectedRuntimes(): string[] {
  const wanted = (process.env.ATTEST_RUNTIMES ?? ALL_RUNTIMES.join(","))
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return ALL_RUNTIMES.filter((r) => wanted.includes(r));
}

/** The `sandbox:` YAML block for a runtime. */
export function sandboxYaml(runtime: string): string {
  if (runtime === "docker")
    return `sandbox: { runtime: docker, docker: { image: "attest/postgres:{major}", pull: false } }`;
  return "sandbox: { runtime: local }";
}

/** What a run of `runtime` left behind: sandbox dirs or containers carrying the run id. */
export function leftovers(runtime: string, runId: string): string[] {
  if (runtime === "docker") {
    const out = execFileSync(
      "docker",
      ["ps", "-a", "--filter", `label=attest.run=${runId}`, "--format", "{{.Names}}"],
      {
        encoding: "utf8",
      },
    );
    return out.split("\n").filter(Boolean);
  }
  return localSandboxes(runId);
}

/**
 * The per-runtime helpers of a drill contract suite (call inside its describe): `config` writes a
 * workspace whose config runs in `runtime`; `run` calls the CLI with --json and parses exactly one
 * document; at the end no run may have left anything behind, and the workspaces go.
 */
export function drillSuite(runtime: string): {
  config: (body: string) => { dir: string; config: string };
  run: (args: string[]) => Promise<CliResult & { doc: RunResult }>;
} {
  const runs: string[] = [];
  const dirs: string[] = [];
  afterAll(() => {
    for (const id of runs) expect(leftovers(runtime, id), `leftovers of run ${id}`).toEqual([]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return {
    config(body) {
      const ws = workspace(
        (dir) =>
          `${sandboxYaml(runtime)}\n${body}\nhistory: { csv: ${dir}/reports/history.csv }\nreports: { dir: ${dir}/reports }\n`,
      );
      dirs.push(ws.dir);
      return ws;
    },
    async run(args) {
      const r = await attest([...args, "--json", "--no-mail"]);
      let doc: RunResult;
      try {
        doc = JSON.parse(r.stdout) as RunResult;
      } catch {
        throw new Error(
          `stdout is not one JSON document (exit ${r.code}): ${r.stdout.slice(0, 300)} ${r.stderr.slice(-1500)}`,
        );
      }
      runs.push(doc.run.id);
      return { ...r, doc };
    },
  };
}
