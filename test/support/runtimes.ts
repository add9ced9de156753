/** The runtimes the contract suites loop over, filterable with ATTEST_RUNTIMES=local,docker. */
import { execFileSync } from "node:child_process";
import { localSandboxes } from "./cli.js";

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
