#!/usr/bin/env node
/** The `attest` command line. Parsing and printing only; the work lives in the stages. */
import { Command, CommanderError } from "commander";
import { registerCompletion } from "./completion.js";
import { applyCliConventions } from "./help.js";

type Register = (program: Command, setExit: (code: number) => void) => void;

/**
 * Each command's module, loaded only when that command runs: pdfkit, prom-client and the
 * SDKs cost a second of start-up that `drill` in a release pipeline should not pay.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  audit: async () => (await import("./audit.js")).registerAudit,
  list: async () => (await import("./list.js")).registerList,
  config: async () => (await import("./config-check.js")).registerConfig,
  history: async () => (await import("./history.js")).registerHistory,
  check: async () => (await import("./check.js")).registerCheck,
  report: async () => (await import("./report.js")).registerReport,
  serve: async () => (await import("./serve.js")).registerServe,
  evidence: async () => (await import("./evidence.js")).registerEvidence,
};
const ALIASES: Record<string, string> = { drill: "audit" };

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

const wanted = process.argv[2] ?? "";
const only = COMMANDS[ALIASES[wanted] ?? wanted];
// --help, no command or an unknown one: every command is listed
for (const load of only ? [only] : Object.values(COMMANDS)) (await load())(program, setExit);
// `completion` is small and needs every command loaded (it is not in COMMANDS, so they are)
registerCompletion(program, setExit);
applyCliConventions(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; a parsing error is bad usage (2), except for `check`,
    // whose caller is Nagios: there 2 means CRITICAL, so bad usage is UNKNOWN (3)
    exitCode = err.exitCode === 0 ? 0 : wanted === "check" ? 3 : 2;
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
