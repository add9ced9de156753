#!/usr/bin/env bash
# Installs what the object-storage tests need on a Debian 12 machine: Ceph's monitor, OSD and
# RADOS Gateway (the real S3 server the suite starts on loopback), the Ceph admin tools, and the
# S3 clients the tests write backups with (barman-cloud, boto3, socat).
# Idempotent: does nothing that is already done. Fails with one clear line when it cannot.
set -euo pipefail

log() { printf 'ensure-s3: %s\n' "$*" >&2; }
die() { printf 'ensure-s3: error: %s\n' "$*" >&2; exit 1; }

need_pkgs=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd ceph-mon || need_pkgs+=(ceph-mon)
have_cmd ceph-osd || need_pkgs+=(ceph-osd)
have_cmd radosgw || need_pkgs+=(radosgw)
{ have_cmd ceph-authtool && have_cmd ceph; } || need_pkgs+=(ceph-common)
have_cmd radosgw-admin || [[ " ${need_pkgs[*]} " == *" radosgw "* ]] || need_pkgs+=(radosgw)
have_cmd barman-cloud-backup || need_pkgs+=(barman-cli-cloud)
/usr/bin/python3 -c 'import boto3' >/dev/null 2>&1 || need_pkgs+=(python3-boto3)  # Debian's python, which barman-cloud runs on
have_cmd socat || need_pkgs+=(socat)
have_cmd openssl || need_pkgs+=(openssl)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing packages (${need_pkgs[*]}) and not root: install them with apt-get"
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null \
    || die "apt-get install ${need_pkgs[*]} failed"
fi

# The packages may start their own systemd units on a machine with systemd; the suite runs its own
# cluster on loopback and never uses those.
log "s3 tools ready"
