#!/usr/bin/env bash
# What confined local sandboxes need: bubblewrap, the unprivileged account attest-sandbox, and a
# kernel that lets that account create user namespaces. Idempotent; one clear line when it cannot.
set -euo pipefail

log() { printf 'ensure-sandbox: %s\n' "$*" >&2; }
die() { printf 'ensure-sandbox: error: %s\n' "$*" >&2; exit 1; }

if ! command -v bwrap >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "bubblewrap is missing and not root to install it (apt-get install bubblewrap)"
  log "installing bubblewrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null; } \
    || die "apt-get install bubblewrap failed"
fi

# Only root switches sandboxes to this account; anyone else's sandboxes run as themselves.
if [ "$(id -u)" = 0 ]; then
  if ! getent passwd attest-sandbox >/dev/null; then
    log "creating the sandbox account attest-sandbox (owns nothing but sandbox directories)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin attest-sandbox \
      || die "useradd attest-sandbox failed"
  fi
  as=(setpriv --reuid attest-sandbox --regid attest-sandbox --clear-groups)
else
  as=()
fi
if ! "${as[@]}" bwrap --unshare-all --ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64 \
  --symlink usr/bin /bin /bin/true 2>/dev/null; then
  die "bubblewrap cannot create a sandbox here: unprivileged user namespaces are disabled (sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1); see docs/security.md"
fi
