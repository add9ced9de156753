/** `attest history verify`: checks the hash chain of the history CSV. */
import { HistoryStore } from "../history/history-store.js";
import { configFrom, fail, printJson } from "./common.js";

/** The flags of `history verify`. */
export interface HistoryVerifyFlags {
  config?: string;
  json?: boolean;
}

/** Runs `history verify`; returns the exit code (1 when the chain is broken). */
export function historyVerify(flags: HistoryVerifyFlags): number {
  try {
    const cfg = configFrom(flags.config);
    const verdict = new HistoryStore(cfg.history.csv).verify();
    if (flags.json) printJson({ file: cfg.history.csv, ...verdict });
    else if (verdict.ok)
      process.stdout.write(`${cfg.history.csv}: OK — ${verdict.rows} rows, head ${verdict.head}\n`);
    else process.stdout.write(`${cfg.history.csv}: BROKEN — ${verdict.problem}\n`);
    return verdict.ok ? 0 : 1;
  } catch (err) {
    return fail(err);
  }
}
