#!/usr/bin/env bash
# The whole test suite: installs/starts what it needs (apt packages, the Docker engine, the
# offline sandbox image), builds, lints, type-checks and runs every test. Under CI=true a
# skipped test is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-node-deps.sh
bash scripts/ensure-system.sh
bash scripts/ensure-s3.sh
bash docker/build-sandbox-image.sh 15
echo "attest: build, lint, type-check" >&2
npm run --silent build
chmod +x dist/cli/main.js
npx biome check --diagnostic-level=error .
npx tsc --noEmit -p tsconfig.test.json
report=$(mktemp /tmp/attest-vitest-XXXXXX.json)
trap 'rm -f "$report"' EXIT
status=0
npx vitest run --reporter=default --reporter=json --outputFile="$report" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  if (process.env.CI === "true" && skipped > 0) {
    console.error("attest: under CI=true nothing may be skipped");
    process.exit(1);
  }
  if (r.numTotalTests === 0) { console.error("attest: no test ran"); process.exit(1); }
' "$report" || status=1
exit "$status"
