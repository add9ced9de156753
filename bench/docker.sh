#!/usr/bin/env bash
# Benchmark of Docker sandboxes (issue 3): the same cached pg_dump drilled four ways in one run,
#   npm run bench -- --case docker [--size-mb N] [--rounds R] [--jobs J] [--startup-samples S] [--no-build] [--rebuild-data]
#
# R rounds (default 3), the order rotated every round, of
#   (a) native by hand on the host (bench/native.sh: initdb, pg_restore -jJ, pg_amcheck, stop, rm);
#   (b) `attest drill` with sandbox.runtime local;
#   (c) `attest drill` with sandbox.runtime docker, image attest/postgres:{major}, confined as by
#       default (network none, socket only, non-root, no capabilities, read-only root);
#   (d) the by-hand baseline inside a container, unconfined: `docker run --rm --network host` of the same
#       image with the dump bind-mounted read-only, running initdb, pg_ctl start, createdb,
#       pg_restore -jJ --exit-on-error, the inventory's row counts (bench/native.sh) and
#       pg_amcheck with the same throwaway settings — timed
#       end to end, container creation and removal included.
# Attest runs the same checks as the logical benchmark's (b): amcheck on; full_read, write and
# inventory compare off. Then S samples (default 5) of the docker runtime's sandbox start
# (bench/docker-startup.mjs: provision() of an init sandbox, then destroy()).
# Prints medians, c/d (target ≤ 1.05), c/b, the sandbox start time (target < 2 s) and checks
# that no container is left. The image is never pulled (docker run --pull never; Attest with
# pull: false): build it with docker/build-sandbox-image.sh. The dump is the logical
# benchmark's (bench/dataset.sh, cached by size). Everything is removed on every exit path.
set -Eeuo pipefail
set -m

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=bench/dataset.sh
source "$BENCH_ROOT/bench/dataset.sh"
# shellcheck source=bench/native.sh
source "$BENCH_ROOT/bench/native.sh"

SIZE_MB=1000
ROUNDS=3
JOBS=2
BUILD=1
REBUILD=0
STARTUP_SAMPLES=5
IMAGE_TEMPLATE="attest/postgres:{major}"
usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
  --size-mb) SIZE_MB="${2:?--size-mb needs a number}"; shift 2 ;;
  --size-mb=*) SIZE_MB="${1#*=}"; shift ;;
  --rounds) ROUNDS="${2:?--rounds needs a number}"; shift 2 ;;
  --rounds=*) ROUNDS="${1#*=}"; shift ;;
  --jobs) JOBS="${2:?--jobs needs a number}"; shift 2 ;;
  --jobs=*) JOBS="${1#*=}"; shift ;;
  --startup-samples) STARTUP_SAMPLES="${2:?--startup-samples needs a number}"; shift 2 ;;
  --startup-samples=*) STARTUP_SAMPLES="${1#*=}"; shift ;;
  --no-build) BUILD=0; shift ;;
  --rebuild-data) REBUILD=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ "$SIZE_MB" =~ ^[0-9]+$ && "$SIZE_MB" -ge 10 ]] || { echo "--size-mb must be an integer ≥ 10" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 ]] || { echo "--rounds must be an integer ≥ 1" >&2; exit 2; }
[[ "$JOBS" =~ ^[0-9]+$ && "$JOBS" -ge 1 ]] || { echo "--jobs must be an integer ≥ 1" >&2; exit 2; }
[[ "$STARTUP_SAMPLES" =~ ^[0-9]+$ ]] || { echo "--startup-samples must be an integer ≥ 0" >&2; exit 2; }

BIN="$(pg_bin)"
PG_VERSION="$("$BIN/postgres" --version | awk '{print $3}')"
MAJOR="${PG_VERSION%%.*}"
IMAGE="${IMAGE_TEMPLATE//\{major\}/$MAJOR}"
require_pg_user
command -v docker >/dev/null 2>&1 || die "no docker CLI (apt-get install docker.io)"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "the Docker engine does not answer (start dockerd)"
# never pulled: a missing image is an error, not a download
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "image $IMAGE is not present; build it offline with docker/build-sandbox-image.sh $MAJOR"
IMAGE_ID="$(docker image inspect -f '{{.Id}}' "$IMAGE" | cut -c8-19)"
DOCKER_VERSION="$(docker version --format '{{.Server.Version}}')"

bench_setup "$BUILD"
BENCH_DOCKER=1
BENCH_DOCKER_LABEL="attest-bench.run=$BENCH_RUN_ID"
log "bench containers carry the label $BENCH_DOCKER_LABEL"

if ((REBUILD)); then rm -rf "$CACHE/logical-v${DATASET_VERSION}-${SIZE_MB}mb"; fi
require_free_mb $((SIZE_MB * 3 + 500))
ensure_dataset "$SIZE_MB"

attest_settings SERVER_SETTINGS

RESULTS="$BENCH_WORK/results.tsv"
printf 'round\tvariant\twall_ms\tprovision_ms\trestore_ms\tchecks_ms\tteardown_ms\tcontainer_ms\tself_rss_kb\texit\tjson\n' >"$RESULTS"

# ---------------------------------------------------------------------------------------------
# (a) native by hand on the host

native_run() {
  native_logical_run "$1" native
  printf '%s\tnative\t%s\t%s\t%s\t%s\t%s\t\t\t0\t\n' "$1" "$R_WALL" "$R_PROVISION" "$R_RESTORE" "$R_CHECKS" "$R_TEARDOWN" >>"$RESULTS"
  log "round $1 (a) native on the host: $(secs "$R_WALL") s"
}

# ---------------------------------------------------------------------------------------------
# (b)/(c) attest drill, local and docker runtime

CHECKS="{ amcheck: true, full_read: false, write: false, inventory: { compare: false } }"
write_config() { # variant sandbox-yaml
  local variant=$1
  mkdir -p "$BENCH_WORK/reports-$variant"
  cat >"$BENCH_WORK/attest-$variant.yml" <<YAML
# generated by bench/docker.sh
organization: { name: Attest bench }
sandbox:
$2
  timeout: 4h
sources:
  - name: $BENCH_DOCKER_SOURCE
    type: dump-dir
    path: "$DUMP_DIR"
    include: ["bench.dump"]
    jobs: $JOBS
    checks: $CHECKS
history: { csv: "$BENCH_WORK/reports-$variant/history.csv" }
reports: { dir: "$BENCH_WORK/reports-$variant", pdf: false, json: true }
YAML
}
write_config local "  runtime: local
  local: { bin_dir: \"$BIN\", user: \"$BENCH_PG_USER\", work_dir: \"$BENCH_WORK\" }"
write_config docker "  runtime: docker
  docker: { image: \"$IMAGE_TEMPLATE\", pull: false }"

attest_run() { # round variant
  local round=$1 variant=$2 out="$BENCH_WORK/out/$2-$1"
  # --verbose (debug logs): the docker runtime logs its start-up breakdown ("docker sandbox ready");
  # both runtimes get it, so they log alike
  attest_drill "$out" "$BENCH_WORK/attest-$variant.yml" "$BENCH_DOCKER_SOURCE" --verbose
  if ((R_RC != 0)) || [[ "$R_VERDICT" != "pass" && "$R_VERDICT" != "warn" ]]; then
    die "attest drill ($variant, round $round) exited $R_RC with verdict $R_VERDICT: $(tail -n 5 "$out.log")"
  fi
  printf '%s\t%s\t%s\t\t\t\t\t\t%s\t%s\t%s\n' "$round" "$variant" "$R_WALL" "$R_RSS_KB" "$R_RC" "$out.json" >>"$RESULTS"
  log "round $round ($([[ $variant == local ]] && echo b || echo c)) attest drill, $variant runtime: $(secs "$R_WALL") s, verdict $R_VERDICT, own peak RSS $((${R_RSS_KB:-0} / 1024)) MB"
}

# ---------------------------------------------------------------------------------------------
# (d) the by-hand baseline inside a container of the same image

SETTINGS_TEXT="$(for kv in "${SERVER_SETTINGS[@]}"; do printf "%s = '%s'\n" "${kv%%=*}" "${kv#*=}"; done)"
# Runs as the image's postgres user; prints "@t <phase> <epoch ms>" marks (same kernel clock
# as the host's) so the end-to-end time can be split into phases.
# shellcheck disable=SC2016
CONTAINER_SCRIPT='set -e
mark() { echo "@t $1 $(date +%s%3N)"; }
mark started
D=/tmp/bench
mkdir -m 700 -p "$D" "$D/sock"
umask 077
pw=$(head -c 18 /dev/urandom | base64 | tr "+/" "-_")
printf "*:*:*:postgres:%s\n" "$pw" >"$D/pgpass"
printf "%s\n" "$pw" >"$D/pwfile"
initdb -D "$D/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile="$D/pwfile" -E UTF8 --locale=C.UTF-8 --no-sync >"$D/initdb.log" 2>&1 || { cat "$D/initdb.log" >&2; exit 1; }
printf "%s\nport = %s\nlisten_addresses = '"'"'127.0.0.1'"'"'\nunix_socket_directories = '"'"'%s'"'"'\n" "$SETTINGS" "$PORT" "$D/sock" >>"$D/data/postgresql.conf"
pg_ctl -D "$D/data" -l "$D/server.log" -w -t 60 start >/dev/null || { tail -n 5 "$D/server.log" >&2; exit 1; }
mark up
export PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER=postgres PGPASSFILE="$D/pgpass" PGDATABASE=postgres
createdb -T template0 bench
pg_restore -j "$JOBS" --exit-on-error --no-password -d bench /in/dump
mark restored
psql -X -At -v ON_ERROR_STOP=1 --no-password -d bench -c "$COUNTS" | psql -X -At -v ON_ERROR_STOP=1 --no-password -d bench -f - >/dev/null
pg_amcheck --heapallindexed --install-missing --no-password --jobs 2 -d bench
mark checked
pg_ctl -D "$D/data" -m fast -w -t 60 stop >/dev/null
mark stopped'

docker_native_run() { # round
  local round=$1 out="$BENCH_WORK/out/docker-native-$1" port t0 t1 rc=0
  port=$(free_port)
  t0=$(now_ms)
  run_wait --out "$out.log" --err "$out.err" \
    docker run --rm --pull never --network host --user postgres --shm-size 1g \
    --label "$BENCH_DOCKER_LABEL" --name "attest-bench-$$-$round" \
    -v "$DUMP:/in/dump:ro" -e "PORT=$port" -e "JOBS=$JOBS" -e "SETTINGS=$SETTINGS_TEXT" -e "COUNTS=$INVENTORY_COUNTS" \
    -e "PATH=/usr/lib/postgresql/$MAJOR/bin:/usr/local/bin:/usr/bin:/bin" -e LANG=C.UTF-8 \
    "$IMAGE" sh -c "$CONTAINER_SCRIPT" || rc=$?
  t1=$(now_ms)
  ((rc == 0)) || die "the by-hand container run exited with $rc: $(tail -n 5 "$out.err")"
  local started up restored checked
  started=$(awk '$1 == "@t" && $2 == "started" { print $3 }' "$out.log")
  up=$(awk '$1 == "@t" && $2 == "up" { print $3 }' "$out.log")
  restored=$(awk '$1 == "@t" && $2 == "restored" { print $3 }' "$out.log")
  checked=$(awk '$1 == "@t" && $2 == "checked" { print $3 }' "$out.log")
  [[ -n "$started" && -n "$up" && -n "$restored" && -n "$checked" ]] || die "the by-hand container printed no phase marks: $(head -c 500 "$out.log")"
  printf '%s\tdocker-native\t%s\t%s\t%s\t%s\t%s\t%s\t\t0\t\n' "$round" $((t1 - t0)) $((up - t0)) $((restored - up)) \
    $((checked - restored)) $((t1 - checked)) $((started - t0)) >>"$RESULTS"
  log "round $round (d) by hand in a container: $(secs $((t1 - t0))) s (container start $((started - t0)) ms)"
}

# ---------------------------------------------------------------------------------------------
# the rounds, then the start-up samples

variants=(native local docker docker-native)
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
STARTED_AT=$(now_ms)
for ((r = 1; r <= ROUNDS; r++)); do
  n=${#variants[@]}
  for ((i = 0; i < n; i++)); do
    v=${variants[$(((i + r - 1) % n))]}
    case "$v" in
    native) native_run "$r" ;;
    docker-native) docker_native_run "$r" ;;
    *) attest_run "$r" "$v" ;;
    esac
  done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
ELAPSED=$(($(now_ms) - STARTED_AT))

: >"$BENCH_WORK/startup.jsonl"
if ((STARTUP_SAMPLES > 0)); then
  log "sandbox start: $STARTUP_SAMPLES sample(s) of DockerRuntime.provision(init) + destroy()"
  run_wait --out "$BENCH_WORK/startup.jsonl" --err "$BENCH_WORK/out/startup.err" \
    node "$BENCH_ROOT/bench/docker-startup.mjs" "$BENCH_DIST" "$STARTUP_SAMPLES" "$BENCH_RUN_ID" "$IMAGE_TEMPLATE" "$BENCH_DOCKER_SOURCE-startup" ||
    die "the start-up measurement failed: $(tail -n 5 "$BENCH_WORK/out/startup.err")"
fi

read -r LEFT_BENCH LEFT_ATTEST LEFT_ALL < <(docker_leftovers)
cat >"$BENCH_WORK/meta.json" <<JSON
{ "case": "docker", "sizeMb": $SIZE_MB, "rounds": $ROUNDS, "jobs": $JOBS, "pgVersion": "$PG_VERSION",
  "dbBytes": $DB_BYTES, "dumpBytes": $DUMP_BYTES, "image": "$IMAGE", "imageId": "$IMAGE_ID",
  "dockerVersion": "$DOCKER_VERSION", "cpus": $(nproc), "loadStart": "$LOAD_START", "loadEnd": "$LOAD_END",
  "elapsedMs": $ELAPSED, "leftBench": $LEFT_BENCH, "leftAttest": $LEFT_ATTEST, "leftAll": $LEFT_ALL, "label": "$BENCH_DOCKER_LABEL" }
JSON
mkdir -p "$CACHE/results"
stamp="$(date -u +%Y%m%dT%H%M%SZ)-docker-${SIZE_MB}mb"
node "$BENCH_ROOT/bench/summarize-case.mjs" docker "$BENCH_WORK/meta.json" "$RESULTS" "$BENCH_WORK/startup.jsonl" | tee "$CACHE/results/$stamp.txt"
cp "$RESULTS" "$CACHE/results/$stamp.tsv"
if [[ -n "${BENCH_TABLE_OUT:-}" ]]; then cp "$CACHE/results/$stamp.txt" "$BENCH_TABLE_OUT"; fi
log "table and raw rows kept in $CACHE/results/$stamp.{txt,tsv}"
