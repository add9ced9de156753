/** Builds the real sample backups once per test run (cached by the fixture scripts). */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");

export default function setup(): void {
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
}
