# The physical benchmark's backup (sourced by physical.sh after lib.sh): a cluster with WAL
# archiving on, filled by pgbench -i to about SIZE_MB, a pg_basebackup -Ft -z -c fast -X none
# (tar.gz + backup_manifest; its WAL comes from the archive), then TRAFFIC seconds of pgbench
# after it so that recovery has WAL to replay, pg_switch_wal() and the archiver waited for.
# The source cluster is stopped and removed right after; segments older than the backup are
# removed from the archive with pg_archivecleanup (as an operator's retention would).
#
# Cached in bench/.cache/physical-v1-<N>mb/ (gitignored; BENCH_CACHE_DIR overrides):
#   backups/base/base.tar.gz, backups/base/backup_manifest   the base backup (source `path`)
#   wal/                                                       the WAL archive (source `wal_archive`)
#   meta.env                                                   what was built (below)
# Bump PHYS_DATASET_VERSION whenever the generator changes.

PHYS_DATASET_VERSION=1

# lsn_bytes X/Y → the LSN as a byte position
lsn_bytes() {
  local hi=${1%/*} lo=${1#*/}
  echo $(((16#$hi << 32) + 16#$lo))
}

# Ensures the cached backup for SIZE_MB exists; sets PHYS_DIR and sources its meta.env.
#   ensure_physical_dataset SIZE_MB TRAFFIC_SECONDS
ensure_physical_dataset() {
  local size_mb=$1 traffic=$2
  local cache="${BENCH_CACHE_DIR:-$BENCH_ROOT/bench/.cache}"
  PHYS_DIR="$cache/physical-v${PHYS_DATASET_VERSION}-${size_mb}mb"
  if [[ -s "$PHYS_DIR/meta.env" && -s "$PHYS_DIR/backups/base/base.tar.gz" ]]; then
    log "using cached base backup and WAL archive $PHYS_DIR"
    # shellcheck disable=SC1091
    source "$PHYS_DIR/meta.env"
    return
  fi
  # pgbench scale 1 ≈ 15 MB (100 000 accounts + primary key) on PostgreSQL 15
  SCALE=$(((size_mb + 7) / 15))
  ((SCALE >= 1)) || SCALE=1
  log "building a ~${size_mb} MB cluster with WAL archiving: pgbench scale $SCALE, then a base backup and ${traffic} s of traffic"
  local t0 src port env arch
  t0=$(now_ms)
  src="$BENCH_WORK/psource"
  arch="$src/wal"
  mkdir -p "$src/sock" "$src/out" "$arch"
  give_to_pg "$src"
  BENCH_CLUSTERS+=("$src/data")
  as_pg -- "$BIN/initdb" -D "$src/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >"$src/initdb.log" 2>&1 ||
    die "initdb of the source cluster failed: $(tail -n 5 "$src/initdb.log")"
  port=$(free_port)
  # fsync and synchronous_commit off only make the build faster; what the WAL holds (replica
  # level, full-page writes) is what a production server writes
  cat >>"$src/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$src/sock'
fsync = off
synchronous_commit = off
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $arch/%f && cp %p $arch/%f'
max_wal_size = 4GB
maintenance_work_mem = 256MB
log_checkpoints = off
CONF
  as_pg -- "$BIN/pg_ctl" -D "$src/data" -l "$src/server.log" -w -t 120 start >/dev/null ||
    die "the source cluster did not start: $(tail -n 5 "$src/server.log")"
  env=(PGHOST=127.0.0.1 "PGPORT=$port" PGUSER=postgres)
  psql_src() { as_pg "${env[@]}" -- "$BIN/psql" -X -qAt -d "${2:-postgres}" -c "$1"; }
  as_pg "${env[@]}" -- "$BIN/createdb" -T template0 bench
  run_wait --out "$src/pgbench-init.log" --err "$src/pgbench-init.log" \
    as_pg "${env[@]}" -- "$BIN/pgbench" -i -q -s "$SCALE" bench ||
    die "pgbench -i failed: $(tail -n 5 "$src/pgbench-init.log")"
  DB_BYTES=$(psql_src "select pg_database_size('bench')")
  log "database built: $((DB_BYTES / 1048576)) MB in $((($(now_ms) - t0) / 1000)) s; pg_basebackup -Ft -z -c fast -X none"
  run_wait --out "$src/basebackup.log" --err "$src/basebackup.log" \
    as_pg "${env[@]}" -- "$BIN/pg_basebackup" -D "$src/out/base" -Ft -z -c fast -X none ||
    die "pg_basebackup failed: $(tail -n 5 "$src/basebackup.log")"
  local hist
  hist="$(ls "$arch"/*.backup 2>/dev/null | tail -n 1)"
  [[ -n "$hist" ]] || die "the backup history file was not archived"
  START_LSN="$(awk '/^START WAL LOCATION:/ { print $4 }' "$hist")"
  STOP_LSN="$(awk '/^STOP WAL LOCATION:/ { print $4 }' "$hist")"
  log "backup taken ($START_LSN → $STOP_LSN); pgbench traffic for $traffic s"
  run_wait --out "$src/pgbench-run.log" --err "$src/pgbench-run.err" \
    as_pg "${env[@]}" -- "$BIN/pgbench" -n -c 2 -j 2 -T "$traffic" bench ||
    die "pgbench traffic failed: $(tail -n 5 "$src/pgbench-run.err")"
  TPS="$(awk '/^tps = / { printf "%d", $3; exit }' "$src/pgbench-run.log")"
  END_LSN="$(psql_src "select pg_switch_wal()")"
  local last_wal
  last_wal="$(psql_src "select pg_walfile_name('$END_LSN')")"
  local waited=0
  until [[ "$(psql_src "select coalesce(last_archived_wal, '') >= '$last_wal' from pg_stat_archiver")" == t ]]; do
    ((waited++ < 600)) || die "the archiver did not archive $last_wal within 2 minutes"
    sleep 0.2
  done
  SEG_SIZE=$(psql_src "select setting::bigint * (case unit when 'B' then 1 when 'kB' then 1024 else 1048576 end) from pg_settings where name = 'wal_segment_size'")
  CHECKSUMS=$(psql_src "show data_checksums")
  as_pg -- "$BIN/pg_ctl" -D "$src/data" -m fast -w -t 120 stop >/dev/null || stop_cluster "$src/data"
  rm -rf "$src/data"
  # retention: what precedes the backup is of no use to it
  as_pg -- "$BIN/pg_archivecleanup" "$arch" "$(basename "$hist")" ||
    die "pg_archivecleanup failed"
  WAL_SEGMENTS=$(find "$arch" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}' | wc -l)
  WAL_BYTES=$(($(lsn_bytes "$END_LSN") - $(lsn_bytes "$START_LSN")))
  mkdir -p "$cache"
  chmod 755 "$cache"
  rm -rf "$PHYS_DIR.tmp"
  BENCH_REMOVE+=("$PHYS_DIR.tmp")
  mkdir -p "$PHYS_DIR.tmp/backups"
  mv "$src/out/base" "$PHYS_DIR.tmp/backups/base"
  mv "$arch" "$PHYS_DIR.tmp/wal"
  rm -rf "$src"
  if [[ $EUID -eq 0 ]]; then chown -R root: "$PHYS_DIR.tmp"; fi
  # world-readable: the sandbox user extracts the backup and restore_command reads the archive
  find "$PHYS_DIR.tmp" -type d -exec chmod 755 {} +
  find "$PHYS_DIR.tmp" -type f -exec chmod 644 {} +
  BACKUP_BYTES=$(stat -c %s "$PHYS_DIR.tmp/backups/base/base.tar.gz")
  TRAFFIC_SECONDS=$traffic
  TPS=${TPS:-0}
  cat >"$PHYS_DIR.tmp/meta.env" <<META
SIZE_MB=$size_mb
SCALE=$SCALE
DB_BYTES=$DB_BYTES
BACKUP_BYTES=$BACKUP_BYTES
START_LSN=$START_LSN
STOP_LSN=$STOP_LSN
END_LSN=$END_LSN
SEG_SIZE=$SEG_SIZE
WAL_SEGMENTS=$WAL_SEGMENTS
WAL_BYTES=$WAL_BYTES
TRAFFIC_SECONDS=$TRAFFIC_SECONDS
TPS=$TPS
CHECKSUMS=$CHECKSUMS
BUILT_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
META
  rm -rf "$PHYS_DIR"
  mv "$PHYS_DIR.tmp" "$PHYS_DIR"
  log "cached $PHYS_DIR: base.tar.gz $((BACKUP_BYTES / 1048576)) MB, $WAL_SEGMENTS WAL segments ($START_LSN → $END_LSN), after $((($(now_ms) - t0) / 1000)) s"
}
