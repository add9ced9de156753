#!/usr/bin/env bash
# Benchmark of a logical drill (issue "foundation"): how much slower is `attest drill` than
# doing the same work by hand, and how much memory does Attest itself use?
#
#   npm run bench [-- --size-mb N] [--rounds R] [--jobs J] [--no-default-checks] [--no-build] [--rebuild-data]
#
# 1. Builds a database of about N MB (default 1000): pgbench -i at a matching scale plus a
#    wide table (jsonb, text[], TOASTed text, secondary indexes); dumps it with pg_dump -Fc and
#    caches the dump in bench/.cache/ keyed by size (gitignored). The source cluster is stopped
#    and removed right after the dump.
# 2. Alternates R rounds (default 3), rotating the order every round, of
#    (a) native: as the postgres user, initdb with Attest's throwaway settings, start on a free
#        loopback port, createdb, pg_restore -jJ --exit-on-error, pg_amcheck --heapallindexed,
#        stop, rm — timed end to end;
#    (b) `attest drill --json --no-mail` with the same checks (amcheck on; full_read, write and
#        inventory compare off) — the headline;
#    (c) `attest drill` with Attest's default checks (skip with --no-default-checks).
# 3. Prints medians, b/a (target ≤ 1.10), Attest's own peak RSS (target < 150 MB), the dump
#    size and per-phase medians from Attest's JSON timings; keeps a copy of the table and the
#    raw rows under bench/.cache/results/.
# Every cluster and temporary directory is removed on every exit path (trap).
set -Eeuo pipefail
set -m # each background job is its own process group, so cleanup can end it whole

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=bench/dataset.sh
source "$BENCH_ROOT/bench/dataset.sh"

SIZE_MB=1000
ROUNDS=3
JOBS=2
DEFAULT_VARIANT=1
BUILD=1
REBUILD=0
usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
  --size-mb) SIZE_MB="${2:?--size-mb needs a number}"; shift 2 ;;
  --size-mb=*) SIZE_MB="${1#*=}"; shift ;;
  --rounds) ROUNDS="${2:?--rounds needs a number}"; shift 2 ;;
  --rounds=*) ROUNDS="${1#*=}"; shift ;;
  --jobs) JOBS="${2:?--jobs needs a number}"; shift 2 ;;
  --jobs=*) JOBS="${1#*=}"; shift ;;
  --no-default-checks) DEFAULT_VARIANT=0; shift ;;
  --no-build) BUILD=0; shift ;;
  --rebuild-data) REBUILD=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ "$SIZE_MB" =~ ^[0-9]+$ && "$SIZE_MB" -ge 10 ]] || { echo "--size-mb must be an integer ≥ 10" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 ]] || { echo "--rounds must be an integer ≥ 1" >&2; exit 2; }
[[ "$JOBS" =~ ^[0-9]+$ && "$JOBS" -ge 1 ]] || { echo "--jobs must be an integer ≥ 1" >&2; exit 2; }

BIN="$(pg_bin)"
PG_VERSION="$("$BIN/postgres" --version | awk '{print $3}')"
if [[ $EUID -eq 0 ]]; then
  id "$BENCH_PG_USER" >/dev/null 2>&1 || die "running as root, but there is no OS user $BENCH_PG_USER to run PostgreSQL as"
fi
if [[ ! -x /usr/bin/time ]] && [[ $EUID -eq 0 ]]; then
  log "installing GNU time (apt-get install -y time)"
  apt-get install -y -qq time >/dev/null 2>&1 || log "could not install GNU time; the children-inclusive RSS column stays empty"
fi

cd "$BENCH_ROOT"
bench_init_work
log "work directory $BENCH_WORK"
mkdir -p "$BENCH_WORK/out"
CACHE="${BENCH_CACHE_DIR:-$BENCH_ROOT/bench/.cache}"

# The measured Attest is a private compiled copy, so that other people rebuilding dist/ while
# the rounds run cannot change it under us. It sits inside the repository so that its imports
# resolve against node_modules/; cleanup() removes it.
BENCH_DIST="$BENCH_ROOT/bench/.cache/dist.$$"
mkdir -p "$BENCH_ROOT/bench/.cache"
if ((BUILD)); then
  log "compiling the CLI (tsc -p tsconfig.json, into $BENCH_DIST)"
  if ! npx --no-install tsc -p tsconfig.json --outDir "$BENCH_DIST" --sourceMap false >"$BENCH_WORK/tsc.log" 2>&1; then
    # tsc still emits on type errors; what is measured is what the working tree compiles to
    log "tsc reported $(grep -c 'error TS' "$BENCH_WORK/tsc.log") type error(s) but emitted; first: $(grep -m1 'error TS' "$BENCH_WORK/tsc.log")"
  fi
else
  [[ -f dist/cli/main.js ]] || die "dist/ is missing: run npx tsc -p . first (or drop --no-build)"
  cp -a dist "$BENCH_DIST"
fi
[[ -f "$BENCH_DIST/cli/main.js" && -f "$BENCH_DIST/runtimes/local/local-sandbox.js" ]] || die "the CLI did not compile: $(tail -n 5 "$BENCH_WORK/tsc.log" 2>/dev/null)"

if ((REBUILD)); then rm -rf "$CACHE/logical-v${DATASET_VERSION}-${SIZE_MB}mb"; fi
# room for the data build (when not cached) and one restored copy with its WAL at a time
need_mb=$((SIZE_MB * 3 + 500))
free_mb=$(df -Pm "$BENCH_WORK" | awk 'NR == 2 { print $4 }')
((free_mb > need_mb)) || die "$free_mb MB free under $BENCH_WORK, need about $need_mb MB"
ensure_dataset "$SIZE_MB"

# ---------------------------------------------------------------------------------------------
# (a) the native work by hand

mapfile -t SERVER_SETTINGS < <(node "$BENCH_ROOT/bench/pg-settings.mjs" "$BENCH_DIST")
((${#SERVER_SETTINGS[@]} > 5)) || die "could not read THROWAWAY_SETTINGS from the compiled Attest"

native_run() {
  local round=$1 d="$BENCH_WORK/native-$1" port t0 t1 t2 t3 t4 rc=0
  port=$(free_port)
  local pgenv=(PGHOST=127.0.0.1 "PGPORT=$port" PGUSER=postgres "PGPASSFILE=$d/pgpass" PGDATABASE=postgres)
  t0=$(now_ms)
  # provision: a private directory, a random password (as Attest), initdb, start, wait for it
  mkdir -m 700 "$d" "$d/sock"
  local password
  password="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
  printf '*:*:*:postgres:%s\n' "$password" >"$d/pgpass"
  printf '%s\n' "$password" >"$d/pwfile"
  chmod 600 "$d/pgpass" "$d/pwfile"
  give_to_pg "$d"
  BENCH_CLUSTERS+=("$d/data")
  as_pg -- "$BIN/initdb" -D "$d/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    "--pwfile=$d/pwfile" -E UTF8 --locale=C.UTF-8 --no-sync >"$d/initdb.log" 2>&1 ||
    die "native initdb failed: $(tail -n 5 "$d/initdb.log")"
  {
    local kv
    for kv in "${SERVER_SETTINGS[@]}"; do printf "%s = '%s'\n" "${kv%%=*}" "${kv#*=}"; done
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$d/sock'"
  } >>"$d/data/postgresql.conf"
  as_pg -- "$BIN/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 60 start >/dev/null ||
    die "native postgres did not start: $(tail -n 5 "$d/server.log")"
  t1=$(now_ms)
  # restore
  as_pg "${pgenv[@]}" -- "$BIN/createdb" -T template0 bench
  run_wait --err "$BENCH_WORK/out/native-$round.restore.log" \
    as_pg "${pgenv[@]}" -- "$BIN/pg_restore" -j "$JOBS" --exit-on-error --no-password -d bench "$DUMP" || die "native pg_restore failed: $(tail -n 5 "$BENCH_WORK/out/native-$round.restore.log")"
  t2=$(now_ms)
  # checks: the same pg_amcheck invocation as Attest's amcheck check
  run_wait --out "$BENCH_WORK/out/native-$round.amcheck.log" --err "$BENCH_WORK/out/native-$round.amcheck.err" \
    as_pg "${pgenv[@]}" -- "$BIN/pg_amcheck" --heapallindexed --install-missing --no-password --jobs 2 -d bench || rc=$?
  ((rc == 0)) || die "native pg_amcheck exited with $rc: $(tail -n 5 "$BENCH_WORK/out/native-$round.amcheck."{log,err})"
  t3=$(now_ms)
  # teardown
  as_pg -- "$BIN/pg_ctl" -D "$d/data" -m fast -w -t 60 stop >/dev/null || stop_cluster "$d/data"
  rm -rf "$d"
  t4=$(now_ms)
  printf '%s\tnative\t%s\t\t\t%s\t%s\t%s\t%s\t0\t\n' "$round" $((t4 - t0)) $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) $((t4 - t3)) \
    >>"$BENCH_WORK/results.tsv"
  log "round $round native: $(((t4 - t0) / 1000)).$((((t4 - t0) % 1000) / 100)) s"
}

# ---------------------------------------------------------------------------------------------
# (b)/(c) attest drill

write_config() { # variant checks-yaml
  local variant=$1 checks=$2
  mkdir -p "$BENCH_WORK/reports-$variant"
  cat >"$BENCH_WORK/attest-$variant.yml" <<YAML
# generated by bench/logical.sh
organization: { name: Attest bench }
sandbox:
  runtime: local
  timeout: 4h
  local: { bin_dir: "$BIN", user: "$BENCH_PG_USER", work_dir: "$BENCH_WORK" }
sources:
  - name: bench
    type: dump-dir
    path: "$DUMP_DIR"
    include: ["bench.dump"]
    jobs: $JOBS
    checks: $checks
history: { csv: "$BENCH_WORK/reports-$variant/history.csv" }
reports: { dir: "$BENCH_WORK/reports-$variant", pdf: false, json: true }
YAML
}
write_config same "{ amcheck: true, full_read: false, write: false, inventory: { compare: false } }"
write_config default "{}"

attest_run() { # round variant
  local round=$1 variant=$2 out="$BENCH_WORK/out/$2-$1" t0 t1 rc=0 timecmd=()
  [[ -x /usr/bin/time ]] && timecmd=(/usr/bin/time -f '%M' -o "$out.time")
  t0=$(now_ms)
  run_wait --out "$out.json" --err "$out.log" \
    env "BENCH_PEAK_RSS_FILE=$out.rss" "${timecmd[@]}" node --import "$BENCH_ROOT/bench/peak-rss.mjs" \
    "$BENCH_DIST/cli/main.js" drill --config "$BENCH_WORK/attest-$variant.yml" --source bench --json --no-mail || rc=$?
  t1=$(now_ms)
  local verdict
  verdict="$(node -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(d.drills?.[0]?.verdict ?? d.status ?? "?")' "$out.json" 2>/dev/null || echo '?')"
  if ((rc != 0)) || [[ "$verdict" != "pass" && "$verdict" != "warn" ]]; then
    die "attest drill ($variant, round $round) exited $rc with verdict $verdict: $(tail -n 5 "$out.log")"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t\t\t\t\t%s\t%s\n' "$round" "$variant" $((t1 - t0)) "$(cat "$out.rss" 2>/dev/null)" \
    "$(tail -n 1 "$out.time" 2>/dev/null)" "$rc" "$out.json" >>"$BENCH_WORK/results.tsv"
  log "round $round attest-$variant: $(((t1 - t0) / 1000)).$((((t1 - t0) % 1000) / 100)) s, verdict $verdict, own peak RSS $(($(cat "$out.rss" 2>/dev/null || echo 0) / 1024)) MB"
}

# ---------------------------------------------------------------------------------------------
# the rounds: every variant once per round, the order rotated each round

variants=(native same)
((DEFAULT_VARIANT)) && variants+=(default)
printf 'round\tvariant\twall_ms\tself_rss_kb\ttree_rss_kb\tprovision_ms\trestore_ms\tchecks_ms\tteardown_ms\texit\tjson\n' >"$BENCH_WORK/results.tsv"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
STARTED_AT=$(now_ms)
for ((r = 1; r <= ROUNDS; r++)); do
  n=${#variants[@]}
  for ((i = 0; i < n; i++)); do
    v=${variants[$(((i + r - 1) % n))]}
    if [[ "$v" == native ]]; then native_run "$r"; else attest_run "$r" "$v"; fi
  done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

cat >"$BENCH_WORK/meta.json" <<JSON
{ "sizeMb": $SIZE_MB, "rounds": $ROUNDS, "jobs": $JOBS, "pgVersion": "$PG_VERSION",
  "dbBytes": $DB_BYTES, "dumpBytes": $DUMP_BYTES, "pgbenchScale": $PGBENCH_SCALE, "wideRows": $WIDE_ROWS,
  "cpus": $(nproc), "loadStart": "$LOAD_START", "loadEnd": "$LOAD_END",
  "elapsedMs": $(($(now_ms) - STARTED_AT)), "dump": "$DUMP" }
JSON
mkdir -p "$CACHE/results"
stamp="$(date -u +%Y%m%dT%H%M%SZ)-${SIZE_MB}mb"
node "$BENCH_ROOT/bench/summarize.mjs" "$BENCH_WORK/meta.json" "$BENCH_WORK/results.tsv" | tee "$CACHE/results/$stamp.txt"
node "$BENCH_ROOT/bench/summarize.mjs" --rows "$BENCH_WORK/meta.json" "$BENCH_WORK/results.tsv" >"$CACHE/results/$stamp.tsv"
log "table and raw rows kept in $CACHE/results/$stamp.{txt,tsv}"
