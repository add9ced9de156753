#!/usr/bin/env node
/** The `attest` command line. Parsing and printing only; the work lives in the stages. */
import { Command, CommanderError } from "commander";
import { registerAudit } from "./audit.js";
import { registerCheck } from "./check.js";
import { registerConfig } from "./config-check.js";
import { registerHistory } from "./history.js";
import { registerList } from "./list.js";
import { registerReport } from "./report.js";
import { registerServe } from "./serve.js";

let exitCode = 0;
const setExit = (code: number) => {
  exitCode = code;
};

const program = new Command()
  .name("attest")
  .description(
    "Proves PostgreSQL backups restore: restore drills, integrity checks, RPO/RTO/retention evidence.",
  )
  .version("0.1.0")
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

registerAudit(program, setExit);
registerList(program, setExit);
registerConfig(program, setExit);
registerHistory(program, setExit);
registerCheck(program, setExit);
registerReport(program, setExit);
registerServe(program, setExit);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; every parsing error is bad usage
    exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`attest: ${(err as Error).message}\n`);
    exitCode = 3;
  }
}
process.exitCode = exitCode;
