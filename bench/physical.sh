#!/usr/bin/env bash
# Benchmark of a physical drill (issue 4): a pg_basebackup (tar.gz, manifest, WAL from the
# archive) restored and replayed to the end of its WAL archive, by hand and by `attest drill`.
#
#   npm run bench -- --case physical [--size-mb N] [--rounds R] [--traffic-seconds T] [--no-build] [--rebuild-data]
#
# 1. Builds (cached in bench/.cache/physical-v1-<N>mb/, bench/physical-dataset.sh) a cluster of
#    about N MB (default 1000) with pgbench and archive_mode on, takes
#    `pg_basebackup -Ft -z -c fast -X none`, runs T s (default 30) of pgbench after it,
#    pg_switch_wal(), waits for the archiver, stops and removes the source cluster.
# 2. Alternates R rounds (default 3), the order rotated every round, of
#    (a) by hand: tar -xzf base.tar.gz into a new data directory owned by postgres (0700),
#        recovery.signal, restore_command = 'cp ARCHIVE/%f %p', recovery_target_timeline latest,
#        recovery_target_action promote (no target: the end of the archive), Attest's throwaway
#        settings for a recovery (bench/pg-settings.mjs --physical), pg_ctl start, poll until
#        pg_is_in_recovery() is false, pg_amcheck --heapallindexed --install-missing --jobs 2
#        --all, stop, rm — timed end to end;
#    (b) `attest drill` of a `type: basebackup` source (path + wal_archive, select latest),
#        checks amcheck on; full_read, write, inventory compare off.
# 3. Prints medians, b/a (target ≤ 1.10), per-phase medians and the WAL replay rate (bytes from
#    the backup's start LSN to the reached LSN / recovery time: start → promoted), and times one
#    pg_verifybackup by hand (Attest runs it in every drill while a manifest is present).
# Every cluster and temporary directory is removed on every exit path (trap).
set -Eeuo pipefail
set -m

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=bench/physical-dataset.sh
source "$BENCH_ROOT/bench/physical-dataset.sh"

SIZE_MB=1000
ROUNDS=3
TRAFFIC=30
BUILD=1
REBUILD=0
usage() { sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
  --size-mb) SIZE_MB="${2:?--size-mb needs a number}"; shift 2 ;;
  --size-mb=*) SIZE_MB="${1#*=}"; shift ;;
  --rounds) ROUNDS="${2:?--rounds needs a number}"; shift 2 ;;
  --rounds=*) ROUNDS="${1#*=}"; shift ;;
  --traffic-seconds) TRAFFIC="${2:?--traffic-seconds needs a number}"; shift 2 ;;
  --traffic-seconds=*) TRAFFIC="${1#*=}"; shift ;;
  --no-build) BUILD=0; shift ;;
  --rebuild-data) REBUILD=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ "$SIZE_MB" =~ ^[0-9]+$ && "$SIZE_MB" -ge 10 ]] || { echo "--size-mb must be an integer ≥ 10" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 ]] || { echo "--rounds must be an integer ≥ 1" >&2; exit 2; }
[[ "$TRAFFIC" =~ ^[0-9]+$ && "$TRAFFIC" -ge 1 ]] || { echo "--traffic-seconds must be an integer ≥ 1" >&2; exit 2; }

BIN="$(pg_bin)"
PG_VERSION="$("$BIN/postgres" --version | awk '{print $3}')"
require_pg_user

bench_setup "$BUILD"

if ((REBUILD)); then rm -rf "$CACHE/physical-v${PHYS_DATASET_VERSION}-${SIZE_MB}mb"; fi
# the build: cluster + its WAL (pgbench -i) + backup; a round: one restored copy at a time
require_free_mb $((SIZE_MB * 4 + 1000))
ensure_physical_dataset "$SIZE_MB" "$TRAFFIC"
BASE_TGZ="$PHYS_DIR/backups/base/base.tar.gz"
ARCHIVE="$PHYS_DIR/wal"

attest_settings PHYS_SETTINGS --physical

RESULTS="$BENCH_WORK/results.tsv"
printf 'round\tvariant\twall_ms\trestore_ms\trecovery_ms\tchecks_ms\tteardown_ms\treached_lsn\tself_rss_kb\texit\tjson\n' >"$RESULTS"

# ---------------------------------------------------------------------------------------------
# (a) by hand

native_run() {
  local round=$1 d="$BENCH_WORK/phys-native-$1" port t0 t1 t2 t3 t4 rc=0 state="" lsn
  port=$(free_port)
  local psql=(as_pg -- "$BIN/psql" -X -qAt -h "$d/sock" -p "$port" -U postgres -d postgres)
  t0=$(now_ms)
  mkdir -m 700 "$d" "$d/sock" "$d/data"
  give_to_pg "$d"
  BENCH_CLUSTERS+=("$d/data")
  run_wait --err "$BENCH_WORK/out/native-$round.tar.log" as_pg -- tar -xzf "$BASE_TGZ" -C "$d/data" ||
    die "tar -xzf failed: $(tail -n 5 "$BENCH_WORK/out/native-$round.tar.log")"
  chmod 700 "$d/data"
  : >"$d/data/recovery.signal"
  {
    echo "# bench: archive recovery to the end of the archive"
    echo "restore_command = 'cp $ARCHIVE/%f %p'"
    echo "recovery_target_timeline = 'latest'"
    echo "recovery_target_action = 'promote'"
    local kv
    for kv in "${PHYS_SETTINGS[@]}"; do printf "%s = '%s'\n" "${kv%%=*}" "${kv#*=}"; done
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$d/sock'"
  } >>"$d/data/postgresql.auto.conf"
  give_to_pg "$d/data/recovery.signal" "$d/data/postgresql.auto.conf"
  t1=$(now_ms)
  as_pg -- "$BIN/pg_ctl" -D "$d/data" -l "$d/server.log" -W start >/dev/null ||
    die "pg_ctl start failed: $(tail -n 5 "$d/server.log")"
  # the same poll as Attest's: every 200 ms until the server is out of recovery
  local deadline=$((t1 + 4 * 3600 * 1000))
  while :; do
    state="$("${psql[@]}" -c "select pg_is_in_recovery()" 2>/dev/null || true)"
    [[ "$state" == f ]] && break
    if (($(now_ms) - t1 > 5000)) && ! postmaster_pid "$d/data" >/dev/null; then
      die "the restored server stopped during recovery: $(tail -n 5 "$d/server.log")"
    fi
    (($(now_ms) < deadline)) || die "recovery did not finish in 4 h"
    sleep 0.2
  done
  t2=$(now_ms)
  lsn="$("${psql[@]}" -c "select pg_last_wal_replay_lsn()")"
  run_wait --out "$BENCH_WORK/out/native-$round.amcheck.log" --err "$BENCH_WORK/out/native-$round.amcheck.err" \
    as_pg -- "$BIN/pg_amcheck" -h "$d/sock" -p "$port" -U postgres --heapallindexed --install-missing --no-password --jobs 2 --all || rc=$?
  ((rc == 0)) || die "pg_amcheck exited with $rc: $(tail -n 5 "$BENCH_WORK/out/native-$round.amcheck."{log,err})"
  t3=$(now_ms)
  as_pg -- "$BIN/pg_ctl" -D "$d/data" -m fast -w -t 60 stop >/dev/null || stop_cluster "$d/data"
  rm -rf "$d"
  t4=$(now_ms)
  printf '%s\tnative\t%s\t%s\t%s\t%s\t%s\t%s\t\t0\t\n' "$round" $((t4 - t0)) $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) $((t4 - t3)) "$lsn" >>"$RESULTS"
  log "round $round (a) by hand: $(secs $((t4 - t0))) s (recovery $(secs $((t2 - t1))) s to $lsn)"
}

# ---------------------------------------------------------------------------------------------
# (b) attest drill

mkdir -p "$BENCH_WORK/reports"
cat >"$BENCH_WORK/attest.yml" <<YAML
# generated by bench/physical.sh
organization: { name: Attest bench }
sandbox:
  runtime: local
  timeout: 4h
  local: { bin_dir: "$BIN", work_dir: "$BENCH_WORK" }   # the default confined account (attest-sandbox)
sources:
  - name: bench-physical
    type: basebackup
    path: "$PHYS_DIR/backups"
    wal_archive: "$ARCHIVE"
    select: latest
    # the cached archive may be days old: no stall finding
    wal_stall: { warning: 3650d, critical: 3650d }
    checks: { amcheck: true, full_read: false, write: false, inventory: { compare: false } }
history: { csv: "$BENCH_WORK/reports/history.csv" }
reports: { dir: "$BENCH_WORK/reports", pdf: false, json: true }
YAML

attest_run() {
  local round=$1 out="$BENCH_WORK/out/attest-$1"
  attest_drill "$out" "$BENCH_WORK/attest.yml" bench-physical
  if ((R_RC != 0)) || [[ "$R_VERDICT" != "pass" && "$R_VERDICT" != "warn" ]]; then
    die "attest drill (round $round) exited $R_RC with verdict $R_VERDICT: $(tail -n 5 "$out.log"; node -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(d.drills?.[0]?.reason ?? "")' "$out.json" 2>/dev/null)"
  fi
  printf '%s\tattest\t%s\t\t\t\t\t\t%s\t%s\t%s\n' "$round" "$R_WALL" "$R_RSS_KB" "$R_RC" "$out.json" >>"$RESULTS"
  log "round $round (b) attest drill: $(secs "$R_WALL") s, verdict $R_VERDICT, own peak RSS $((${R_RSS_KB:-0} / 1024)) MB"
}

# ---------------------------------------------------------------------------------------------
# the rounds

variants=(native attest)
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
STARTED_AT=$(now_ms)
for ((r = 1; r <= ROUNDS; r++)); do
  n=${#variants[@]}
  for ((i = 0; i < n; i++)); do
    v=${variants[$(((i + r - 1) % n))]}
    if [[ "$v" == native ]]; then native_run "$r"; else attest_run "$r"; fi
  done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
ELAPSED=$(($(now_ms) - STARTED_AT))

# pg_verifybackup by hand, once, right after an extraction (as in a drill): what it costs
vd="$BENCH_WORK/verify"
mkdir -m 700 "$vd" "$vd/data"
give_to_pg "$vd"
run_wait as_pg -- tar -xzf "$BASE_TGZ" -C "$vd/data" || die "tar -xzf failed"
t0=$(now_ms)
run_wait --out "$BENCH_WORK/out/verifybackup.log" --err "$BENCH_WORK/out/verifybackup.log" \
  as_pg -- "$BIN/pg_verifybackup" -n -m "$PHYS_DIR/backups/base/backup_manifest" "$vd/data" ||
  die "pg_verifybackup failed: $(tail -n 5 "$BENCH_WORK/out/verifybackup.log")"
VERIFY_MS=$(($(now_ms) - t0))
rm -rf "$vd"

cat >"$BENCH_WORK/meta.json" <<JSON
{ "case": "physical", "sizeMb": $SIZE_MB, "rounds": $ROUNDS, "pgVersion": "$PG_VERSION", "scale": $SCALE,
  "dbBytes": $DB_BYTES, "backupBytes": $BACKUP_BYTES, "startLsn": "$START_LSN", "stopLsn": "$STOP_LSN",
  "endLsn": "$END_LSN", "segSize": $SEG_SIZE, "walSegments": $WAL_SEGMENTS, "walBytes": $WAL_BYTES,
  "trafficSeconds": $TRAFFIC_SECONDS, "tps": $TPS, "checksums": "$CHECKSUMS", "verifyBackupMs": $VERIFY_MS,
  "cpus": $(nproc), "loadStart": "$LOAD_START", "loadEnd": "$LOAD_END", "elapsedMs": $ELAPSED }
JSON
mkdir -p "$CACHE/results"
stamp="$(date -u +%Y%m%dT%H%M%SZ)-physical-${SIZE_MB}mb"
node "$BENCH_ROOT/bench/summarize-case.mjs" physical "$BENCH_WORK/meta.json" "$RESULTS" | tee "$CACHE/results/$stamp.txt"
cp "$RESULTS" "$CACHE/results/$stamp.tsv"
if [[ -n "${BENCH_TABLE_OUT:-}" ]]; then cp "$CACHE/results/$stamp.txt" "$BENCH_TABLE_OUT"; fi
log "table and raw rows kept in $CACHE/results/$stamp.{txt,tsv}"
