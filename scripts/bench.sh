#!/usr/bin/env bash
# `npm run bench [-- --size-mb N --rounds R …]`: the logical drill benchmark (bench/logical.sh).
set -euo pipefail
exec bash "$(dirname "$0")/../bench/logical.sh" "$@"
