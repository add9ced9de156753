/**
 * Every command's name, options and help. A command's work lives in its own module, imported
 * only when that command runs: `--help`, `--version` and completion load none of them, and a
 * drill does not pay for the report, evidence or service code (pdfkit, prom-client, SDKs).
 */
import type { Command } from "commander";
import { FRAMEWORK_IDS } from "../evidence/framework-ids.js";
import type { RunFlags } from "./audit.js";
import type { CheckFlags } from "./check.js";
import type { ConfigCheckFlags } from "./config-check.js";
import type { ExportFlags, VerifyFlags } from "./evidence.js";
import type { HistoryVerifyFlags } from "./history.js";
import type { ListFlags } from "./list.js";
import type { ReportFlags } from "./report.js";
import type { ServeFlags } from "./serve.js";

type SetExit = (code: number) => void;

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Registers `audit` and `drill`. */
function registerAudit(program: Command, setExit: SetExit): void {
  const run = async (kind: "audit" | "drill", flags: RunFlags) =>
    setExit(await (await import("./audit.js")).auditCommand(kind, flags));
  program
    .command("audit")
    .description(
      "drill the selected backups of every source, evaluate policies, record history, send reports",
    )
    .requiredOption("--config <file>", "configuration file")
    .option("--source <name>", "only this source (repeatable)", collect)
    .option("--json", "print one JSON document on stdout")
    .option("--no-mail", "do not send e-mail")
    .option("--wait <duration>", "wait this long for another run's lock (default: refuse at once, exit 3)")
    .option("-v, --verbose", "debug logs")
    .action((flags: RunFlags) => run("audit", flags));
  program
    .command("drill")
    .description("restore and verify one backup of one source now (exit code gates a release)")
    .requiredOption("--config <file>", "configuration file")
    .requiredOption("--source <name>", "the source", collect)
    .option("--backup <id>", "backup id, or latest", "latest")
    .option("--target-time <iso>", "recovery target time (physical backups)")
    .option("--label <text>", "label recorded with the run (release id)")
    .option("--json", "print one JSON document on stdout")
    .option("--no-mail", "do not send e-mail")
    .option("--wait <duration>", "wait this long for another run's lock (default: refuse at once, exit 3)")
    .option("-v, --verbose", "debug logs")
    .action((flags: RunFlags) => run("drill", flags));
}

/** Registers `list`. */
function registerList(program: Command, setExit: SetExit): void {
  program
    .command("list")
    .description("list the backups of each source (no restore)")
    .requiredOption("--config <file>", "configuration file")
    .option("--source <name>", "only this source (repeatable)", collect)
    .option("--json", "print one JSON document on stdout")
    .action(async (flags: ListFlags) => setExit(await (await import("./list.js")).list(flags)));
}

/** Registers `config check`. */
function registerConfig(program: Command, setExit: SetExit): void {
  const config = program.command("config").description("configuration commands");
  config
    .command("check")
    .description("validate a configuration file (exit 2 with the key path and reason when invalid)")
    .requiredOption("--config <file>", "configuration file")
    .option(
      "--json",
      "print the resolved configuration and each source's effective policies (secrets redacted)",
    )
    .action(async (flags: ConfigCheckFlags) =>
      setExit((await import("./config-check.js")).configCheck(flags)),
    );
}

/** Registers `history verify`. */
function registerHistory(program: Command, setExit: SetExit): void {
  const history = program.command("history").description("history commands");
  history
    .command("verify")
    .description(
      "verify that no history row was edited, inserted or removed (exit 1 when the chain is broken)",
    )
    .requiredOption("--config <file>", "configuration file")
    .option("--json", "print one JSON document on stdout")
    .action(async (flags: HistoryVerifyFlags) =>
      setExit((await import("./history.js")).historyVerify(flags)),
    );
}

/** Registers `check`. */
function registerCheck(program: Command, setExit: SetExit): void {
  program
    .command("check")
    .description(
      "evaluate policies without restoring: one Nagios line (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
    )
    .requiredOption("--config <file>", "configuration file")
    .option("--source <name>", "only this source (repeatable)", collect)
    .option("--json", "print the check's run document instead of the Nagios line")
    .option("-v, --verbose", "debug logs")
    .action(async (flags: CheckFlags) => setExit(await (await import("./check.js")).check(flags)));
}

/** Registers `report`. */
function registerReport(program: Command, setExit: SetExit): void {
  program
    .command("report")
    .description("compliance export of drills, violations and coverage over a period, from history alone")
    .requiredOption("--config <file>", "configuration file")
    .requiredOption("--from <date>", "first day (YYYY-MM-DD, UTC) or ISO time")
    .requiredOption("--to <date>", "last day (inclusive) or ISO time")
    .option("--format <list>", "any of pdf,csv,json", "pdf,csv,json")
    .option(
      "--framework <list>",
      `controls to map the evidence to, any of ${FRAMEWORK_IDS.join(",")} (default: evidence.frameworks)`,
    )
    .option("--out <dir>", "output folder (default: <reports.dir>/exports/<from>_<to>)")
    .option("--json", "print one JSON document (files written, chain state) on stdout")
    .action(async (flags: ReportFlags) => setExit(await (await import("./report.js")).report(flags)));
}

/** Registers `serve`. */
function registerServe(program: Command, setExit: SetExit): void {
  program
    .command("serve")
    .description(
      "run the config's schedule: plans on cron, /healthz, /metrics and /runs; SIGTERM stops gracefully, SIGHUP reloads",
    )
    .requiredOption("--config <file>", "configuration file")
    .option("-v, --verbose", "debug logs")
    .action(async (flags: ServeFlags) => setExit(await (await import("./serve.js")).serve(flags)));
}

/** Registers `evidence export` and `evidence verify`. */
function registerEvidence(program: Command, setExit: SetExit): void {
  const evidence = program.command("evidence").description("signed evidence bundles for auditors");
  evidence
    .command("export")
    .description(
      "write one signed archive of a period: history rows and chain links, run and evidence documents, PDFs, redacted config",
    )
    .requiredOption("--config <file>", "configuration file")
    .requiredOption("--from <date>", "first day (YYYY-MM-DD, UTC) or ISO time")
    .requiredOption("--to <date>", "last day (inclusive) or ISO time")
    .option(
      "--out <file>",
      "archive to write (default: <reports.dir>/bundles/attest-evidence-<from>_<to>.tar.gz)",
    )
    .option(
      "--framework <list>",
      `controls the bundled report maps to, any of ${FRAMEWORK_IDS.join(",")} (default: evidence.frameworks, else all)`,
    )
    .option("--json", "print one JSON document on stdout")
    .action(async (flags: ExportFlags) =>
      setExit(await (await import("./evidence.js")).exportCommand(flags)),
    );
  evidence
    .command("verify")
    .description(
      "check a bundle offline, without a config: signature, every file's SHA-256, the history chain (exit 1 naming the first problem)",
    )
    .argument("<file>", "the bundle (.tar.gz)")
    .requiredOption(
      "--public-key <pem>",
      "the signer's Ed25519 public key, kept apart from the verifier host",
    )
    .option(
      "--expect-head <sha256>",
      "a history chain head kept outside the verifier host; it must be in the bundle's chain",
    )
    .option("--json", "print one JSON document on stdout")
    .action(async (file: string, flags: VerifyFlags) =>
      setExit((await import("./evidence.js")).verifyCommand(file, flags)),
    );
}

/** Registers every command but `completion`, in the order `attest --help` lists them. */
export function registerCommands(program: Command, setExit: SetExit): void {
  registerAudit(program, setExit);
  registerList(program, setExit);
  registerConfig(program, setExit);
  registerHistory(program, setExit);
  registerCheck(program, setExit);
  registerReport(program, setExit);
  registerServe(program, setExit);
  registerEvidence(program, setExit);
}
