/**
 * Builds the real sample backups once per test run (cached by the fixture scripts), and gives
 * the run a temporary directory of its own (TMPDIR for every test and every process they start),
 * removed when the run ends; a run killed before its end leaves one that the next run removes.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processAlive } from "../../src/util/os-user.js";

const root = join(import.meta.dirname, "..", "..");
const RUN_DIR = /^attest-vt-(\d+)-/;

export default function setup(): () => void {
  const base = tmpdir();
  sweepRunDirsOfGoneProcesses(base);
  const dir = mkdtempSync(join(base, `attest-vt-${process.pid}-`));
  // like the OS temp dir it stands for: the sandbox account must be able to reach its sandboxes
  chmodSync(dir, 0o711);
  process.env.TMPDIR = dir;
  execFileSync(
    "bash",
    [join(root, "fixtures", "build-dumps.sh"), join(root, "fixtures", "generated", "dumps")],
    {
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  if (!existsSync(join(root, "dist", "cli", "main.js"))) {
    throw new Error("dist/cli/main.js is missing: run `npm run build` (npm test does it)");
  }
  return () => removeRunDir(dir);
}

// --one-file-system: a mount a failed test left inside is never descended into (its content is
// not ours to delete); the directory then stays, and the test that left the mount has failed
function removeRunDir(dir: string): void {
  try {
    execFileSync("rm", ["-rf", "--one-file-system", dir], { stdio: "ignore" });
  } catch {
    // what cannot be removed stays for the next run's sweep
  }
}

function sweepRunDirsOfGoneProcesses(base: string): void {
  for (const name of readdirSync(base)) {
    const pid = Number(RUN_DIR.exec(name)?.[1] ?? Number.NaN);
    if (!Number.isInteger(pid) || processAlive(pid)) continue;
    removeRunDir(join(base, name));
  }
}
