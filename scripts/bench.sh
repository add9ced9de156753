#!/usr/bin/env bash
# `npm run bench [-- --case logical|docker|physical|inspect|all] [--size-mb N --rounds R …]`:
# the benchmarks (bench/run.sh); without --case, the logical drill benchmark (bench/logical.sh).
set -euo pipefail
# --case plain: the plain-SQL path vs psql by hand (bench/plain.sh), run on its own
args=("$@")
rest=()
plain=0
for ((i = 0; i < ${#args[@]}; i++)); do
  if [[ "${args[$i]}" == --case=plain ]]; then
    plain=1
  elif [[ "${args[$i]}" == --case && "${args[$((i + 1))]:-}" == plain ]]; then
    plain=1
    i=$((i + 1))
  else
    rest+=("${args[$i]}")
  fi
done
if ((plain)); then exec bash "$(dirname "$0")/../bench/plain.sh" "${rest[@]}"; fi
exec bash "$(dirname "$0")/../bench/run.sh" "$@"
