/** `attest config check`: validates the configuration and says what it found. */
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

/** The flags of `config check`. */
export interface ConfigCheckFlags {
  config?: string;
  json?: boolean;
}

/** Runs `config check`; returns the exit code (2 when the configuration is unusable). */
export function configCheck(flags: ConfigCheckFlags): number {
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
    return problems.length ? 2 : 0;
  } catch (err) {
    return fail(err, flags.json);
  }
}
