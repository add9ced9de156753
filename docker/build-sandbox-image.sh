#!/usr/bin/env bash
# Build the offline PostgreSQL sandbox image for Attest without any registry.
#
#   docker/build-sandbox-image.sh [MAJOR] [--force]
#
# MAJOR defaults to 15 (the only PostgreSQL major Debian bookworm ships). The image is
# tagged attest/postgres:MAJOR. If that tag already exists the script exits 0 at once,
# unless --force is given (an existing image without the template cluster below gets it
# added, no rebuild). Steps: debootstrap a minimal bookworm root containing
# postgresql-MAJOR, shrink it, `docker import` it, add a template cluster (initdb run once
# here; the docker runtime copies it into each sandbox instead of running initdb at every
# start), verify the result under a temporary tag, then move the final tag onto it.
# Progress goes to stderr.
#
# Environment overrides: ATTEST_DEBIAN_MIRROR (default: first URIs: line of
# /etc/apt/sources.list.d/debian.sources), ATTEST_SUITE (default bookworm),
# TMPDIR (where the temporary root is built; default /var/tmp).
set -euo pipefail

PROG=${0##*/}
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

MAJOR=15
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    [0-9]|[0-9][0-9]) MAJOR=$arg ;;
    *) die "unknown argument '$arg' (usage: $PROG [MAJOR] [--force])" ;;
  esac
done

IMAGE="attest/postgres:${MAJOR}"
SUITE=${ATTEST_SUITE:-bookworm}
PGBIN="/usr/lib/postgresql/${MAJOR}/bin"
START=$(date +%s)

# ---- preconditions -------------------------------------------------------------------
command -v docker >/dev/null 2>&1 || die "docker CLI not found (install docker.io)"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
  || die "Docker engine does not answer at ${DOCKER_HOST:-unix:///var/run/docker.sock} (is dockerd running?)"

# Where the template cluster lives in the image (src/runtimes/docker/docker-sandbox.ts LAYOUT.template).
TEMPLATE=/usr/lib/attest/pgdata-template

# add_template SRC DEST: DEST is SRC plus a cluster made by initdb at $TEMPLATE, with the options
# the docker runtime's own initdb uses. Its superuser password is random and thrown away: the
# sandbox server listens on its socket only (trust), so no password login exists at all.
add_template() {
  local src=$1 dest=$2 name="attest-template-$$" rc=0
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run --name "$name" --pull never --network none --user root "$src" sh -c "set -e
    install -d -m 0755 -o postgres -g postgres ${TEMPLATE%/*}
    head -c 18 /dev/urandom | base64 >/tmp/pw && chown postgres /tmp/pw
    su -s /bin/sh postgres -c 'initdb -D $TEMPLATE -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile=/tmp/pw -E UTF8 --locale=C.UTF-8 --no-sync' >/dev/null
    rm -f /tmp/pw
    cat $TEMPLATE/PG_VERSION" >&2 || rc=$?
  if [ "$rc" -eq 0 ]; then
    docker commit -c 'USER postgres' -c 'WORKDIR /sandbox' -c 'CMD ["postgres", "--version"]' \
      -c "LABEL attest.pgdata.template=$TEMPLATE" "$name" "$dest" >/dev/null || rc=$?
  fi
  docker rm -f "$name" >/dev/null 2>&1 || true
  [ "$rc" -eq 0 ] || die "could not add the template cluster to $src"
}

if [ "$FORCE" -eq 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  if [ -z "$(docker image inspect -f '{{index .Config.Labels "attest.pgdata.template"}}' "$IMAGE")" ]; then
    log "image $IMAGE has no template cluster: adding one (initdb once, no rebuild) ..."
    OLDID=$(docker image inspect -f '{{.Id}}' "$IMAGE")
    add_template "$IMAGE" "$IMAGE"
    docker image rm "$OLDID" >/dev/null 2>&1 || true
    log "added the template cluster to $IMAGE in $(( $(date +%s) - START )) s"
    exit 0
  fi
  log "image $IMAGE already exists ($(docker image inspect -f '{{.Id}}' "$IMAGE" | cut -c1-19)); use --force to rebuild"
  exit 0
fi

command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found (apt-get install -y debootstrap)"
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap needs root)"

if [ -n "${ATTEST_DEBIAN_MIRROR:-}" ]; then
  MIRROR=$ATTEST_DEBIAN_MIRROR
else
  SOURCES=/etc/apt/sources.list.d/debian.sources
  [ -r "$SOURCES" ] || die "$SOURCES not readable; set ATTEST_DEBIAN_MIRROR"
  MIRROR=$(awk 'tolower($1) == "uris:" { print $2; exit }' "$SOURCES")
  [ -n "$MIRROR" ] || die "no URIs: line in $SOURCES; set ATTEST_DEBIAN_MIRROR"
fi

# Cheap early check with a clear message (the host's apt lists are bookworm here).
if command -v apt-cache >/dev/null 2>&1 && [ "$SUITE" = bookworm ] \
   && ! apt-cache show "postgresql-${MAJOR}" >/dev/null 2>&1; then
  die "package postgresql-${MAJOR} does not exist in ${SUITE} (bookworm ships 15 only)"
fi

# ---- temporary root, removed on every exit path --------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/attest-sandbox-root.XXXXXX")
WORK=$(cd "$WORK" && pwd -P) # physical path, to match /proc/self/mountinfo
ROOT="$WORK/root"
TMPTAG="attest/postgres-build:${MAJOR}-$$"
DBPID=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$DBPID" ] && kill -0 "$DBPID" 2>/dev/null; then
    log "stopping debootstrap (pid $DBPID) ..."
    kill -TERM -- "-$DBPID" 2>/dev/null || kill -TERM "$DBPID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$DBPID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$DBPID" 2>/dev/null || true
  fi
  # debootstrap mounts proc/sys (and may bind /dev) inside the root; if it died midway
  # they can still be mounted. Unmount deepest first, never follow them with rm.
  if [ -d "$ROOT" ]; then
    awk -v r="$ROOT" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo \
      | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  rm -rf --one-file-system "$WORK" 2>/dev/null || true
  docker image rm -f "$TMPTAG" >/dev/null 2>&1 || true
  if [ "$rc" -ne 0 ]; then log "failed (exit $rc); temporary files removed"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- debootstrap ---------------------------------------------------------------------
# postgresql-MAJOR already provides postgresql-contrib-MAJOR in bookworm. tar/gzip come
# with minbase; lz4/zstd are added for compressed dumps and base backups.
INCLUDE="postgresql-${MAJOR},lz4,zstd,tar,gzip"
log "debootstrap ${SUITE} from ${MIRROR} (include: ${INCLUDE}) into ${ROOT} ..."
DBLOG="$WORK/debootstrap.log"
# Own process group (setsid) so a signal to this script can stop debootstrap and the
# dpkg runs below it before the root is unmounted and removed.
setsid debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOT" "$MIRROR" \
  >"$DBLOG" 2>&1 </dev/null &
DBPID=$!
DBRC=0
wait "$DBPID" || DBRC=$?
DBPID=
if [ "$DBRC" -ne 0 ]; then
  tail -n 15 "$DBLOG" >&2 || true
  [ -f "$ROOT/debootstrap/debootstrap.log" ] && tail -n 15 "$ROOT/debootstrap/debootstrap.log" >&2
  die "debootstrap failed (see output above)"
fi
log "debootstrap done after $(( $(date +%s) - START )) s"

[ -x "$ROOT$PGBIN/postgres" ] || die "postgres binary missing at $PGBIN inside the root"

# ---- trim and prepare ----------------------------------------------------------------
log "trimming root and preparing /sandbox ..."
# The package postinst creates a default cluster (MAJOR/main); Attest runs its own initdb.
rm -rf "$ROOT/var/lib/postgresql/${MAJOR}" "$ROOT/etc/postgresql/${MAJOR}"
rm -rf "$ROOT"/var/cache/apt/* "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/debconf/*-old \
       "$ROOT"/var/log/* "$ROOT"/debootstrap \
       "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
       "$ROOT"/usr/share/lintian "$ROOT"/usr/share/locale/* "$ROOT"/tmp/* "$ROOT"/var/tmp/*
# Recreate the empty directories apt expects.
mkdir -p "$ROOT/var/log/apt" "$ROOT/var/cache/apt/archives/partial" "$ROOT/var/lib/apt/lists/partial"

PGUID=$(awk -F: '$1 == "postgres" { print $3 }' "$ROOT/etc/passwd")
PGGID=$(awk -F: '$1 == "postgres" { print $4 }' "$ROOT/etc/passwd")
[ -n "$PGUID" ] || die "the postgres user does not exist inside the root"
log "postgres user inside the image: uid=${PGUID} gid=${PGGID}"

# /var/run is a symlink to /run in bookworm; the directory must exist in the image since
# nothing (no systemd-tmpfiles) creates it when the container starts.
install -d -m 2775 -o "$PGUID" -g "$PGGID" "$ROOT/run/postgresql"
install -d -m 0700 -o "$PGUID" -g "$PGGID" "$ROOT/sandbox"
chmod 1777 "$ROOT/tmp"
du -sh "$ROOT" 2>/dev/null | awk -v p="$PROG" '{ print p ": root size " $1 }' >&2

# ---- import ----------------------------------------------------------------------------
log "importing into docker as $IMAGE ..."
docker image rm -f "$TMPTAG" >/dev/null 2>&1 || true
tar --numeric-owner -C "$ROOT" -c . | docker import \
  -c "ENV PATH=${PGBIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  -c 'ENV LANG=C.UTF-8' \
  -c 'USER postgres' \
  -c 'WORKDIR /sandbox' \
  -c "LABEL attest.image=sandbox attest.postgres.major=${MAJOR}" \
  -c 'CMD ["postgres", "--version"]' \
  -m "attest offline sandbox: ${SUITE} + postgresql-${MAJOR}" \
  - "$TMPTAG" >/dev/null
log "adding the template cluster at $TEMPLATE ..."
IMPORTED=$(docker image inspect -f '{{.Id}}' "$TMPTAG")
add_template "$TMPTAG" "$TMPTAG"
docker image rm "$IMPORTED" >/dev/null 2>&1 || true

# ---- verify (confined as the docker runtime runs it: no network, no capabilities, read-only root) ----
log "verifying the image ..."
VERIFY='set -e
[ "$(id -un)" = postgres ] || { echo "runs as $(id -un), not postgres"; exit 1; }
for b in initdb pg_ctl postgres pg_restore psql pg_amcheck pg_verifybackup pg_checksums pg_isready pg_dump; do
  command -v "$b" >/dev/null || { echo "$b not on PATH"; exit 1; }
done
for b in tar gzip lz4 zstd; do command -v "$b" >/dev/null || { echo "$b missing"; exit 1; }; done
for d in /sandbox /tmp; do
  t="$d/.attest-write-test"; : >"$t" || { echo "$d not writable by postgres"; exit 1; }; rm -f "$t"
done
[ "$(cat '"$TEMPLATE"'/PG_VERSION)" = '"$MAJOR"' ] || { echo "no template cluster of '"$MAJOR"' at '"$TEMPLATE"'"; exit 1; }
postgres --version'
if ! out=$(docker run --rm --network none --read-only --cap-drop ALL --security-opt no-new-privileges \
  --tmpfs /tmp:rw,nosuid,nodev,mode=1777 --tmpfs /sandbox:rw,nosuid,nodev,mode=0700,uid="$PGUID",gid="$PGGID" \
  "$TMPTAG" sh -c "$VERIFY" 2>&1); then
  die "image verification failed: $(printf '%s' "$out" | tail -n 1)"
fi
log "verified: $out"

OLDID=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
docker tag "$TMPTAG" "$IMAGE"
docker image rm "$TMPTAG" >/dev/null 2>&1 || true
# --force: drop the previous image if nothing else uses it (ignore "in use" errors).
NEWID=$(docker image inspect -f '{{.Id}}' "$IMAGE")
if [ -n "$OLDID" ] && [ "$OLDID" != "$NEWID" ]; then docker image rm "$OLDID" >/dev/null 2>&1 || true; fi
SIZE=$(docker image inspect -f '{{.Size}}' "$IMAGE")
log "built $IMAGE ($(( SIZE / 1024 / 1024 )) MiB, postgres uid=${PGUID} gid=${PGGID}) in $(( $(date +%s) - START )) s"
