#!/usr/bin/env bash
# Installs and starts what the test suite needs on a Debian 12 machine: PostgreSQL 15,
# Barman, pgBackRest, poppler (pdftotext), debootstrap, bubblewrap and the sandbox account, and the
# Docker engine.
# Idempotent: does nothing that is already done. Fails with one clear line when it cannot.
set -euo pipefail

log() { printf 'ensure-system: %s\n' "$*" >&2; }
die() { printf 'ensure-system: error: %s\n' "$*" >&2; exit 1; }

need_pkgs=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_pkgs+=(postgresql-15 postgresql-contrib)
have_cmd pg_dump || need_pkgs+=(postgresql-client-15)
have_cmd barman || need_pkgs+=(barman barman-cli)
have_cmd pgbackrest || need_pkgs+=(pgbackrest)
have_cmd pdftotext || need_pkgs+=(poppler-utils)
have_cmd debootstrap || need_pkgs+=(debootstrap)
have_cmd dockerd || need_pkgs+=(docker.io)
have_cmd losetup || need_pkgs+=(mount)
have_cmd mkfs.ext4 || need_pkgs+=(e2fsprogs)
have_cmd lz4 || need_pkgs+=(lz4)
have_cmd zstd || need_pkgs+=(zstd)
have_cmd bzip2 || need_pkgs+=(bzip2)
have_cmd xz || need_pkgs+=(xz-utils)
have_cmd openssl || need_pkgs+=(openssl)
have_cmd systemd-analyze || need_pkgs+=(systemd)
have_cmd flock || need_pkgs+=(util-linux)
have_cmd bwrap || need_pkgs+=(bubblewrap)
have_cmd zsh || need_pkgs+=(zsh) # the zsh completion script is checked by zsh itself

if [ ${#need_pkgs[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing packages (${need_pkgs[*]}) and not root: install them with apt-get"
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null \
    || die "apt-get install ${need_pkgs[*]} failed"
fi

# The Debian package starts a cluster of its own on port 5432; the suite never uses it.
if have_cmd pg_lsclusters && pg_lsclusters -h 2>/dev/null | grep -q online; then
  pg_lsclusters -h | awk '$4=="online"{print $1, $2}' | while read -r v c; do pg_ctlcluster "$v" "$c" stop || true; done
fi

# Confined local sandboxes: bubblewrap, the attest-sandbox account, user namespaces.
bash "$(dirname "$0")/ensure-sandbox.sh"

# Docker engine: start it detached when no engine answers on the socket.
sock=/var/run/docker.sock
if ! docker version >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "Docker engine not reachable at $sock and not root to start it"
  log "starting dockerd (no bridge, no iptables)"
  mkdir -p /var/log
  nohup dockerd --bridge=none --iptables=false --ip-masq=false >/var/log/attest-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
  docker version >/dev/null 2>&1 || die "dockerd did not answer on $sock within 30 s (see /var/log/attest-dockerd.log)"
fi
log "system ready"
