#!/usr/bin/env bash
# `npm run bench [-- --case logical|docker|physical|inspect|all] [--size-mb N --rounds R …]`:
# the benchmarks (bench/run.sh); without --case, the logical drill benchmark (bench/logical.sh).
set -euo pipefail
exec bash "$(dirname "$0")/../bench/run.sh" "$@"
