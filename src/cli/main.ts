#!/usr/bin/env node
/** The `attest` command line. Parsing and printing only; the work lives in the stages. */
import { Command, CommanderError } from "commander";
import { registerCommands } from "./commands.js";
import { registerCompletion } from "./completion.js";
import { applyCliConventions } from "./help.js";

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

// registering is cheap: each command's work (and its SDKs) is imported only when it runs
registerCommands(program, setExit);
registerCompletion(program, setExit);
applyCliConventions(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; a parsing error is bad usage (2), except for `check`,
    // whose caller is Nagios: there 2 means CRITICAL, so bad usage is UNKNOWN (3)
    exitCode = err.exitCode === 0 ? 0 : process.argv[2] === "check" ? 3 : 2;
  } else {
    process.stderr.write(`attest: ${(err as Error).message}\n`);
    exitCode = 3;
  }
  // --json promises one JSON document on standard output, bad usage included
  if (exitCode !== 0 && process.argv.includes("--json")) {
    const message = (err as Error).message.replace(/^error: /, "");
    const code = err instanceof CommanderError ? "usage" : "unverified";
    process.stdout.write(`${JSON.stringify({ status: "error", error: { code, message } }, null, 2)}\n`);
  }
}
process.exitCode = exitCode;
