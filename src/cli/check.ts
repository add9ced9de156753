/** `attest check`: policy only, no restore. One Nagios line with perfdata; Nagios exit codes. */
import { inventorySources, pickSources, policiesFor } from "../audit/inventory.js";
import { makeRunId, runStatus } from "../audit/run-status.js";
import { HistoryStore } from "../history/history-store.js";
import type { RunResult } from "../model.js";
import { measureDiskSpace } from "../policy/disk-space.js";
import { evaluatePolicies, type PolicyInput } from "../policy/evaluate.js";
import { verifiedRpoTarget } from "../policy/rpo.js";
import { seriesStatuses } from "../policy/series-status.js";
import { NAGIOS, nagiosLine } from "../report/nagios.js";
import { describeError } from "../util/errors.js";
import { redact } from "../util/redact.js";
import { configFrom, loggerFor, printJson } from "./common.js";

/** The flags of `check`. */
export interface CheckFlags {
  config?: string;
  source?: string[];
  json?: boolean;
  verbose?: boolean;
}

/** Runs `check`; returns the Nagios exit code. */
export async function check(flags: CheckFlags): Promise<number> {
  try {
    const config = configFrom(flags.config);
    const logger = loggerFor(flags);
    const startedAt = new Date();
    const inventories = await inventorySources(pickSources(config, flags.source ?? []), logger);
    const store = new HistoryStore(config.history.csv);
    const history = store.read();
    // evidence whose chain does not verify cannot vouch for anything: CRITICAL
    const chain = store.verify();
    const now = new Date();
    const input: PolicyInput = {
      now,
      sources: inventories.map((i) => ({
        config: i.config,
        policies: policiesFor(config, i.config),
        backups: i.backups,
        findings: i.findings,
      })),
      drills: [],
      history,
      disks: await measureDiskSpace(config, inventories),
    };
    const violations = evaluatePolicies(input);
    const problems = inventories
      .filter((i) => i.error)
      .flatMap((i) => i.findings.filter((f) => f.kind === "list_failed"));
    const statuses = seriesStatuses(
      { ...input, sources: input.sources.filter((_, k) => !inventories[k]!.error) },
      violations,
    );
    const findings = inventories.flatMap((i) => i.findings);
    const run: RunResult = {
      run: {
        id: makeRunId(startedAt),
        kind: "check",
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
      },
      status: runStatus([], violations),
      drills: [],
      violations,
      ...(findings.length ? { findings } : {}),
    };
    if (problems.length && run.status !== "fail") run.status = "error";
    if (!chain.ok) {
      run.status = "fail";
      run.findings = [
        ...(run.findings ?? []),
        {
          source: "",
          kind: "history_chain",
          severity: "critical",
          message: `history ${config.history.csv} does not verify: ${chain.problem ?? "unknown problem"}`,
        },
      ];
    }
    const { line, code } = nagiosLine({
      violations,
      statuses,
      problems,
      now,
      chain,
      verifiedTarget: (name) => {
        const src = input.sources.find((s) => s.config.name === name);
        return src ? verifiedRpoTarget(src.policies) : undefined;
      },
    });
    if (flags.json) printJson(run);
    else process.stdout.write(`${redact(line)}\n`);
    return code;
  } catch (err) {
    // a monitoring system reads stdout and the exit code: both say UNKNOWN
    const text = redact(describeError(err)).replace(/\|/g, "/");
    if (flags.json) process.stderr.write(`attest: ${text}\n`);
    else process.stdout.write(`ATTEST UNKNOWN - ${text}\n`);
    return NAGIOS.unknown;
  }
}
