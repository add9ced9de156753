/** `attest config check`: validates the configuration and says what it found. */
import type { Command } from "commander";
import { redact } from "../util/redact.js";
import { configFrom, fail, printJson } from "./common.js";

/** Registers `config check`. */
export function registerConfig(program: Command, setExit: (code: number) => void): void {
  const config = program.command("config").description("configuration commands");
  config
    .command("check")
    .description("validate a configuration file (exit 2 with the key path and reason when invalid)")
    .requiredOption("--config <file>", "configuration file")
    .option("--json", "print the resolved configuration (secrets redacted) as JSON")
    .action((flags: { config?: string; json?: boolean }) => {
      try {
        const cfg = configFrom(flags.config);
        if (flags.json) printJson({ ok: true, config: cfg });
        else {
          process.stdout.write(
            redact(
              `${cfg.file}: OK — ${cfg.sources.length} source(s): ${cfg.sources.map((s) => `${s.name} (${s.type})`).join(", ")}; runtime ${cfg.sandbox.runtime}\n`,
            ),
          );
        }
        setExit(0);
      } catch (err) {
        setExit(fail(err));
      }
    });
}
