/** `attest config check`: validates the configuration and says what it found. */
import type { Command } from "commander";
import { policiesFor } from "../audit/inventory.js";
import type { PoliciesConfig } from "../config/common-schema.js";
import { unwritableOutputs } from "../config/output-dirs.js";
import { formatDuration } from "../util/duration.js";
import { redact } from "../util/redact.js";
import { configFrom, fail, printJson } from "./common.js";

/** Policy targets as written in a config file (durations as text, e.g. `26h`). */
function policiesAsWritten(p: PoliciesConfig): Record<string, unknown> {
  const text = (ms: number | undefined) => (ms === undefined ? undefined : formatDuration(ms));
  return JSON.parse(
    JSON.stringify({
      ...p,
      rpo: text(p.rpo),
      rto: text(p.rto),
      verify_every: text(p.verify_every),
      max_gap: text(p.max_gap),
      rpo_verified: text(p.rpo_verified),
      ...(p.rto_forecast
        ? { rto_forecast: { ...p.rto_forecast, horizon: text(p.rto_forecast.horizon) } }
        : {}),
    }),
  ) as Record<string, unknown>;
}

/** Registers `config check`. */
export function registerConfig(program: Command, setExit: (code: number) => void): void {
  const config = program.command("config").description("configuration commands");
  config
    .command("check")
    .description("validate a configuration file (exit 2 with the key path and reason when invalid)")
    .requiredOption("--config <file>", "configuration file")
    .option(
      "--json",
      "print the resolved configuration and each source's effective policies (secrets redacted)",
    )
    .action((flags: { config?: string; json?: boolean }) => {
      try {
        const cfg = configFrom(flags.config);
        // a run would fail on its first write: say so now, naming the key and the folder
        const problems = unwritableOutputs(cfg);
        if (flags.json) {
          const policies = Object.fromEntries(
            cfg.sources.map((s) => [s.name, policiesAsWritten(policiesFor(cfg, s))]),
          );
          printJson({
            ok: problems.length === 0,
            ...(problems.length ? { problems } : {}),
            config: cfg,
            policies,
          });
        } else if (problems.length) {
          for (const p of problems) process.stderr.write(redact(`attest: ${cfg.file}: ${p}\n`));
        } else {
          process.stdout.write(
            redact(
              `${cfg.file}: OK — ${cfg.sources.length} source(s): ${cfg.sources.map((s) => `${s.name} (${s.type})`).join(", ")}; runtime ${cfg.sandbox.runtime}\n`,
            ),
          );
        }
        setExit(problems.length ? 2 : 0);
      } catch (err) {
        setExit(fail(err, flags.json));
      }
    });
}
