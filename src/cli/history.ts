/** `attest history verify`: checks the hash chain of the history CSV. */
import type { Command } from "commander";
import { HistoryStore } from "../history/history-store.js";
import { configFrom, fail, printJson } from "./common.js";

/** Registers `history verify`. */
export function registerHistory(program: Command, setExit: (code: number) => void): void {
  const history = program.command("history").description("history commands");
  history
    .command("verify")
    .description(
      "verify that no history row was edited, inserted or removed (exit 1 when the chain is broken)",
    )
    .requiredOption("--config <file>", "configuration file")
    .option("--json", "print one JSON document on stdout")
    .action((flags: { config?: string; json?: boolean }) => {
      try {
        const cfg = configFrom(flags.config);
        const verdict = new HistoryStore(cfg.history.csv).verify();
        if (flags.json) printJson({ file: cfg.history.csv, ...verdict });
        else if (verdict.ok)
          process.stdout.write(`${cfg.history.csv}: OK — ${verdict.rows} rows, head ${verdict.head}\n`);
        else process.stdout.write(`${cfg.history.csv}: BROKEN — ${verdict.problem}\n`);
        setExit(verdict.ok ? 0 : 1);
      } catch (err) {
        setExit(fail(err));
      }
    });
}
