/**
 * What `attest --help` and each command's help add to commander's own: the exit codes the
 * command really returns and an example or two, and the --config default chain.
 */
import type { Command } from "commander";

/** A command's exit codes (code → meaning) and examples, keyed by its path ("evidence verify"). */
interface CommandHelp {
  exits: ReadonlyArray<readonly [number, string]>;
  examples: readonly string[];
}

const RUN_EXITS = [
  [0, "everything selected was verified; no critical violation"],
  [1, "a backup failed (did not restore, damaged, an assertion failed) or a critical violation"],
  [2, "bad usage or configuration"],
  [3, "could not verify (error) and nothing failed, or another run holds the lock"],
  [130, "interrupted twice (SIGINT; 143 for SIGTERM): sandboxes destroyed at once"],
] as const;

/** Exit codes and examples of every command; the source of truth is each command's module. */
export const COMMAND_HELP: Readonly<Record<string, CommandHelp>> = {
  audit: {
    exits: RUN_EXITS,
    examples: ["attest audit --config attest.yml", "attest audit --source app-dumps --json --no-mail"],
  },
  drill: {
    exits: RUN_EXITS,
    examples: ['attest drill --source app-dumps --backup latest --label "release 4.2" --json'],
  },
  list: {
    exits: [
      [0, "every source was listed"],
      [2, "bad usage or configuration"],
      [3, "a source could not be listed"],
    ],
    examples: ["attest list", "attest list --source app-dumps --json"],
  },
  check: {
    exits: [
      [0, "OK"],
      [1, "WARNING: a warning violation"],
      [2, "CRITICAL: a critical violation or a broken history chain"],
      [3, "UNKNOWN: a source could not be listed, or bad usage or configuration"],
    ],
    examples: ["attest check --config /etc/attest/attest.yml    # a Nagios/Icinga command"],
  },
  report: {
    exits: [
      [0, "the export was written"],
      [1, "it was written, but the history chain does not verify"],
      [2, "bad usage or configuration"],
      [3, "it could not be written"],
    ],
    examples: [
      "attest report --from 2026-10-01 --to 2026-12-31 --framework iso27001,soc2",
      "attest report --from 2026-11-01 --to 2026-11-30 --format csv --out ./november",
    ],
  },
  "history verify": {
    exits: [
      [0, "the chain holds"],
      [1, "a row was edited, inserted or removed"],
      [2, "bad usage or configuration"],
      [3, "the history could not be read"],
    ],
    examples: ["attest history verify --json"],
  },
  "config check": {
    exits: [
      [0, "the configuration is valid and its output folders are writable"],
      [2, "it is not (the key path and the reason are printed)"],
    ],
    examples: ["attest config check --config attest.yml", "attest config check --json"],
  },
  serve: {
    exits: [
      [0, "stopped cleanly (SIGTERM/SIGINT)"],
      [1, "runs outlived service.shutdown_grace and their sandboxes were destroyed"],
      [2, "bad usage or configuration"],
      [3, "could not start (the listen address is taken, say)"],
    ],
    examples: ["attest serve --config /etc/attest/attest.yml"],
  },
  "evidence export": {
    exits: [
      [0, "the signed bundle was written"],
      [1, "it was written, but the history chain does not verify"],
      [2, "bad usage or configuration (no evidence.signing_key, say)"],
      [3, "it could not be written"],
    ],
    examples: ["attest evidence export --from 2026-01-01 --to 2026-12-31 --out audit-2026.tar.gz"],
  },
  "evidence verify": {
    exits: [
      [0, "signature, every file's hash and the history chain hold"],
      [1, "something does not hold (the first problem is named)"],
      [2, "bad usage: no --public-key, an unreadable file or key"],
    ],
    examples: ["attest evidence verify audit-2026.tar.gz --public-key attest-ed25519.pub.pem"],
  },
  completion: {
    exits: [
      [0, "the script was printed"],
      [2, "unknown shell"],
    ],
    examples: [
      "source <(attest completion bash)            # or add it to ~/.bashrc",
      "attest completion zsh > ~/.zfunc/_attest     # a folder on $fpath",
    ],
  },
};

const CONFIG_DEFAULT = "configuration file (default: $ATTEST_CONFIG, ./attest.yml, /etc/attest/attest.yml)";

/** A command's path from below the program: "evidence verify". */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

function section(help: CommandHelp): string {
  const exits = help.exits.map(([code, what]) => `  ${String(code).padStart(3)}  ${what}`);
  const examples = help.examples.map((e) => `  $ ${e}`);
  // commander ends the help with a newline of its own
  return `\nExit codes:\n${exits.join("\n")}\n\nExamples:\n${examples.join("\n")}`;
}

function allCommands(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...allCommands(c)]);
}

/**
 * Makes --config optional everywhere (the default chain applies) and appends each command's exit
 * codes and examples to its help; the program's help gets a summary of both.
 */
export function applyCliConventions(program: Command): void {
  for (const cmd of allCommands(program)) {
    for (const opt of cmd.options) {
      if (opt.long !== "--config") continue;
      opt.makeOptionMandatory(false);
      opt.description = CONFIG_DEFAULT;
    }
    const help = COMMAND_HELP[commandPath(cmd)];
    if (help) cmd.addHelpText("after", section(help));
  }
  const examples = Object.entries(COMMAND_HELP).map(([, h]) => `  $ ${h.examples[0]}`);
  program.addHelpText(
    "after",
    `
Exit codes (audit, drill; each command's --help lists its own):
${RUN_EXITS.map(([code, what]) => `  ${String(code).padStart(3)}  ${what}`).join("\n")}
  check speaks Nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

--config defaults to $ATTEST_CONFIG, then ./attest.yml, then /etc/attest/attest.yml (the first
that exists).

Examples:
${examples.join("\n")}`,
  );
}
