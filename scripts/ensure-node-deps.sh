#!/usr/bin/env bash
# Installs the locked npm dependencies when node_modules is missing or older than the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "attest: installing the locked npm dependencies" >&2
  # not `npm ci`: it insists on lock entries for every platform's optional binary (Biome's),
  # which a registry mirror may not carry; `npm install --no-save` installs the locked
  # versions and leaves package.json and the lock file untouched
  npm install --no-audit --no-fund --no-save --loglevel=error >&2
fi
