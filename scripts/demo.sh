#!/usr/bin/env bash
# The main job on the embedded default: builds real sample backups with pg_dump, then audits
# them in local throwaway sandboxes, writing reports/history.csv and reports/runs/<id>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-node-deps.sh
bash scripts/ensure-sandbox.sh
npm run --silent build
# samples older than 12 h would (rightly) trip the 26 h RPO policy: build fresh ones
if [ -n "$(find fixtures/generated/dumps/.complete -mmin +720 2>/dev/null)" ]; then rm -rf fixtures/generated/dumps; fi
bash fixtures/build-dumps.sh fixtures/generated/dumps
exec node dist/cli/main.js audit --config fixtures/demo.yml "$@"
