/**
 * The shell-facing CLI, run from dist/ as a user would: the --config default chain
 * ($ATTEST_CONFIG → ./attest.yml → /etc/attest/attest.yml), the exit codes and examples in every
 * command's help, and the bash/zsh completion scripts generated from the program.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "./support/cli.js";

const MAIN = join(ROOT, "dist", "cli", "main.js");
const base = mkdtempSync(join(tmpdir(), "attest-cli-help-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** The environment of a run: nothing of the caller's ATTEST_CONFIG, a HOME of its own. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: base, ...extra };
  if (!("ATTEST_CONFIG" in extra)) delete env.ATTEST_CONFIG;
  if (!("ATTEST_TEST_SYSTEM_CONFIG" in extra)) delete env.ATTEST_TEST_SYSTEM_CONFIG;
  return env;
}

function run(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    cwd: opts.cwd ?? base,
    env: cleanEnv(opts.env),
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A valid configuration in `dir`/`name`, told apart from the others by its organization name. */
function configIn(dir: string, name: string, org: string): string {
  mkdirSync(join(dir, "dumps"), { recursive: true });
  const file = join(dir, name);
  writeFileSync(
    file,
    `organization: { name: ${org} }\nsources:\n  - { name: s, type: dump-dir, path: ./dumps }\nhistory: { csv: ./history.csv }\nreports: { dir: ./reports }\npolicies: {}\n`,
  );
  mkdirSync(join(dir, "reports"), { recursive: true });
  return file;
}

/** Which configuration `config check --json` read: its organization name. */
function picked(r: ReturnType<typeof run>): string {
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { config: { organization: { name: string } } }).config.organization.name;
}

describe("--config default chain", () => {
  const envDir = join(base, "env");
  const cwd = join(base, "cwd");
  const sysDir = join(base, "etc-attest");
  const empty = join(base, "empty");
  mkdirSync(empty, { recursive: true });
  const envFile = configIn(envDir, "from-env.yml", "from-env");
  configIn(cwd, "attest.yml", "from-cwd");
  const sysFile = configIn(sysDir, "attest.yml", "from-etc");
  const sys = { ATTEST_TEST_SYSTEM_CONFIG: sysFile };

  it("takes $ATTEST_CONFIG first, then ./attest.yml, then the system file; --config beats all", () => {
    const check = ["config", "check", "--json"];
    expect(picked(run(check, { cwd, env: { ...sys, ATTEST_CONFIG: envFile } }))).toBe("from-env");
    expect(picked(run(check, { cwd, env: sys }))).toBe("from-cwd");
    expect(picked(run(check, { cwd: empty, env: sys }))).toBe("from-etc");
    const explicit = run([...check, "--config", sysFile], { cwd, env: { ...sys, ATTEST_CONFIG: envFile } });
    expect(picked(explicit)).toBe("from-etc");
  });

  it("passes over an $ATTEST_CONFIG that names no file, saying which file it uses instead", () => {
    const missing = join(base, "missing.yml");
    const r = run(["config", "check", "--json"], { cwd, env: { ...sys, ATTEST_CONFIG: missing } });
    expect(picked(r)).toBe("from-cwd");
    expect(r.stderr).toContain(
      `$ATTEST_CONFIG names ${missing}, which does not exist; using ${join(cwd, "attest.yml")}`,
    );
  });

  it("with none of the three, exits 2 naming all three (one JSON document with --json)", () => {
    const nowhere = { ATTEST_TEST_SYSTEM_CONFIG: join(base, "no-such-etc", "attest.yml") };
    const r = run(["list"], { cwd: empty, env: nowhere });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `attest: no configuration: --config not given; $ATTEST_CONFIG is not set; ./attest.yml (${join(empty, "attest.yml")}) does not exist; /etc/attest/attest.yml (${nowhere.ATTEST_TEST_SYSTEM_CONFIG}) does not exist\n`,
    );
    const json = run(["audit", "--json"], { cwd: empty, env: nowhere });
    expect(json.code).toBe(2);
    const doc = JSON.parse(json.stdout) as { status: string; error: { code: string; message: string } };
    expect(doc).toMatchObject({ status: "error", error: { code: "usage" } });
    expect(doc.error.message).toContain("$ATTEST_CONFIG is not set");
    // Nagios reads stdout: UNKNOWN, naming the chain
    const nagios = run(["check"], { cwd: empty, env: nowhere });
    expect(nagios.code).toBe(3);
    expect(nagios.stdout).toMatch(/^ATTEST UNKNOWN - no configuration: --config not given; /);
  });
});

const helps = new Map<string, ReturnType<typeof run>>();
/** `attest PATH --help`, run once per path ("" is the program's own help). */
function helpOf(path: string): ReturnType<typeof run> {
  let r = helps.get(path);
  if (!r) {
    r = run([...path.split(" ").filter(Boolean), "--help"]);
    expect(r.code, `attest ${path} --help: ${r.stderr}`).toBe(0);
    helps.set(path, r);
  }
  return r;
}

let pathsCache: string[] | undefined;
/** Command paths as `--help` lists them ("config check"), from the program's own help. */
function commandPaths(): string[] {
  pathsCache ??= listCommandPaths();
  return pathsCache;
}

function listCommandPaths(): string[] {
  const names = (help: string) => {
    const section = help.split(/^Commands:$/m)[1]?.split(/^\S/m)[0] ?? "";
    return [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!).filter((n) => n !== "help");
  };
  return names(helpOf("").stdout).flatMap((name) => {
    const subs = names(helpOf(name).stdout);
    return subs.length ? subs.map((s) => `${name} ${s}`) : [name];
  });
}

const optionsCache = new Map<string, string[]>();
/** The long options a command's help lists. */
function optionsOf(path: string): string[] {
  const known = optionsCache.get(path);
  if (known) return known;
  const help = helpOf(path).stdout;
  const section = help.split(/^Options:$/m)[1]?.split(/^\S/m)[0] ?? "";
  const options = [...section.matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]!);
  optionsCache.set(path, options);
  return options;
}

const scripts = new Map<string, string>();
/** The completion script for `shell`, written once to a file. */
function scriptFile(shell: "bash" | "zsh"): string {
  const file = join(base, shell === "bash" ? "attest.bash" : "_attest");
  if (!scripts.has(shell)) {
    const r = run(["completion", shell]);
    expect(r.code, r.stderr).toBe(0);
    writeFileSync(file, r.stdout);
    scripts.set(shell, r.stdout);
  }
  return file;
}

describe("help", () => {
  it("lists every command with exit codes, the --config chain and an example per command", () => {
    const paths = commandPaths();
    expect(paths).toEqual(
      expect.arrayContaining([
        "audit",
        "drill",
        "list",
        "check",
        "report",
        "serve",
        "config check",
        "history verify",
        "evidence export",
        "evidence verify",
        "completion",
      ]),
    );
    const r = helpOf("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^Exit codes \(audit, drill[^\n]*\n {4}0 {2}\S.*\n {4}1 {2}\S.*\n {4}2 {2}bad usage or configuration\n {4}3 {2}\S/m,
    );
    expect(r.stdout).toContain("check speaks Nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN");
    expect(r.stdout).toContain(
      "--config defaults to $ATTEST_CONFIG, then ./attest.yml, then /etc/attest/attest.yml",
    );
    for (const p of paths) expect(r.stdout, p).toMatch(new RegExp(`^ {2}\\$ .*\\battest ${p}\\b`, "m"));
  });

  it("each command's help lists its exit codes and examples, and --config is optional", () => {
    for (const p of commandPaths()) {
      const r = helpOf(p);
      expect(r.code, `${p}: ${r.stderr}`).toBe(0);
      expect(r.stdout, p).toMatch(
        /\nExit codes:\n(?: +\d+ {2}\S[^\n]*\n)+\nExamples:\n(?: {2}\$ [^\n]*\battest [^\n]+\n)+$/,
      );
      if (r.stdout.includes("--config")) {
        expect(r.stdout, p).toMatch(
          /--config <file>\s+configuration file \(default: \$ATTEST_CONFIG,\s+\.\/attest\.yml,/,
        );
        expect(r.stdout, p).not.toMatch(/required/);
      }
    }
  });

  it("the codes it documents are the codes it returns", () => {
    // check: bad usage is UNKNOWN (3), not CRITICAL
    const bad = run(["check", "--no-such-option"]);
    expect(bad.code).toBe(3);
    expect(helpOf("check").stdout).toMatch(/^ +3 {2}UNKNOWN: [^\n]*bad usage/m);
    // completion: an unknown shell is bad usage (2)
    const fish = run(["completion", "fish"]);
    expect(fish.code).toBe(2);
    expect(fish.stderr).toContain("bash, zsh");
    expect(helpOf("completion").stdout).toMatch(/^ +2 {2}unknown shell$/m);
  });
});

/** What the bash completion offers for the words typed so far (the last one being completed). */
function bashComplete(words: string[], cwd = base): string[] {
  const file = scriptFile("bash");
  const quoted = words.map((w) => `'${w}'`).join(" ");
  const r = spawnSync(
    "bash",
    [
      "-c",
      `source '${file}'; COMP_WORDS=(attest ${quoted}); COMP_CWORD=${words.length}; _attest; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: "utf8", cwd },
  );
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split("\n").filter(Boolean);
}

/** What the zsh completion offers, with compsys's _describe and _files replaced by printers. */
function zshComplete(words: string[]): string[] {
  const file = scriptFile("zsh");
  const quoted = words.map((w) => `'${w}'`).join(" ");
  const r = spawnSync(
    "zsh",
    [
      "-fc",
      `compdef() { :; }; _describe() { local n=$4; print -rl -- "\${(@P)n}"; }; _files() { print -r -- '<files>'; }
source '${file}'; words=(attest ${quoted}); CURRENT=${words.length + 1}; _attest`,
    ],
    { encoding: "utf8" },
  );
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => l.replace(/(?<!\\):.*$/, ""));
}

const hasZsh = spawnSync("zsh", ["--version"]).status === 0;

describe("completion", () => {
  it("bash: the script is valid and offers every command, subcommand and option the help lists", () => {
    const script = run(["completion", "bash"]);
    expect(script.code).toBe(0);
    const syntax = spawnSync("bash", ["-n"], { input: script.stdout, encoding: "utf8" });
    expect(syntax.status, syntax.stderr).toBe(0);
    const paths = commandPaths();
    const top = [...new Set(paths.map((p) => p.split(" ")[0]!))];
    expect(bashComplete([""])).toEqual(expect.arrayContaining([...top, "--help", "--version"]));
    for (const p of paths) {
      const [first, second] = p.split(" ");
      if (second) expect(bashComplete([first!, ""]), p).toContain(second);
      expect(bashComplete([...p.split(" "), "--"]), p).toEqual(expect.arrayContaining(optionsOf(p)));
    }
    expect(bashComplete(["ev"])).toEqual(["evidence"]);
    expect(bashComplete(["completion", ""])).toEqual(expect.arrayContaining(["bash", "zsh"]));
  });

  it("bash: files after --config, nothing made up after a value option, commands not confused with values", () => {
    const dir = join(base, "files");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "prod.yml"), "");
    expect(bashComplete(["audit", "--config", "pr"], dir)).toEqual(["prod.yml"]);
    expect(bashComplete(["audit", "--source", ""], dir)).toEqual([]);
    // `--source list` is a value, not the list command: audit's options are still offered
    expect(bashComplete(["audit", "--source", "list", "--j"], dir)).toEqual(["--json"]);
  });

  it("zsh: the script is valid and offers the same commands and options", () => {
    const script = run(["completion", "zsh"]).stdout;
    expect(script.startsWith("#compdef attest\n")).toBe(true);
    // the checks below need zsh (npm test installs it; under CI its absence is a failure)
    expect(hasZsh || process.env.CI !== "true", "zsh is not installed").toBe(true);
    if (!hasZsh) return;
    const paths = commandPaths();
    const syntax = spawnSync("zsh", ["-n"], { input: script, encoding: "utf8" });
    expect(syntax.status, syntax.stderr).toBe(0);
    const top = [...new Set(paths.map((p) => p.split(" ")[0]!))];
    expect(zshComplete([""])).toEqual(expect.arrayContaining(top));
    expect(zshComplete(["evidence", ""])).toEqual(expect.arrayContaining(["export", "verify"]));
    expect(zshComplete(["evidence", "verify", ""])).toEqual(
      expect.arrayContaining(["--public-key", "<files>"]),
    );
    expect(zshComplete(["report", "--config", ""])).toEqual(["<files>"]);
    for (const p of paths)
      expect(zshComplete([...p.split(" "), ""]), p).toEqual(expect.arrayContaining(optionsOf(p)));
  });
});
