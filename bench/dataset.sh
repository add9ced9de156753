# The benchmark dataset (sourced by logical.sh after lib.sh): a database of about SIZE_MB,
# ~70 % pgbench tables (pgbench -i) and ~30 % a wide table with jsonb, text[], text and
# out-of-line TOASTed text, plus secondary indexes; dumped with pg_dump -Fc and cached by size.
#
# The cache lives in bench/.cache/logical-v1-<N>mb/ (gitignored; BENCH_CACHE_DIR overrides):
#   bench.dump   the pg_dump -Fc archive (world-readable: the sandbox user restores it)
#   meta.env     what was built (DB_BYTES, DUMP_BYTES, PGBENCH_SCALE, WIDE_ROWS, BUILT_AT)
# Bump DATASET_VERSION whenever the generator below changes.

DATASET_VERSION=1

# pgbench scale 1 ≈ 15 MB (100 000 accounts + primary key); a wide row ≈ 1.1 kB with its
# share of TOAST and indexes. Both measured on PostgreSQL 15.
dataset_plan() {
  local size_mb=$1
  PGBENCH_SCALE=$(((size_mb * 70 / 100 + 7) / 15))
  ((PGBENCH_SCALE >= 1)) || PGBENCH_SCALE=1
  WIDE_ROWS=$((size_mb * 30 / 100 * 1024 * 1024 / 1100))
  ((WIDE_ROWS >= 1000)) || WIDE_ROWS=1000
}

wide_table_sql() {
  cat <<SQL
\set ON_ERROR_STOP 1
create table public.wide (
  id          bigint primary key,
  created_at  timestamptz not null,
  customer    text not null,
  tags        text[] not null,
  attrs       jsonb not null,
  note        text,
  payload     text
);
-- every 10th row carries ~3.2 kB of hex: incompressible enough for pglz to leave it out of line in TOAST
insert into public.wide
select i,
       timestamptz '2024-01-01' + i * interval '7 seconds',
       'customer-' || (i % 50000),
       array['t' || (i % 7), 't' || (i % 11), 't' || (i % 13)],
       jsonb_build_object(
         'sku', 'SKU-' || (i % 9973),
         'qty', i % 17,
         'price', round((i % 10007) / 100.0, 2),
         'active', i % 3 = 0,
         'dims', jsonb_build_object('w', i % 31, 'h', i % 37, 'd', i % 41),
         'labels', jsonb_build_array('a' || (i % 5), 'b' || (i % 9), 'c' || (i % 19)),
         'ref', md5(i::text)),
       repeat(md5((i * 7)::text), 4),
       case when i % 10 = 0
            then (select string_agg(md5(random()::text || i || g), '') from generate_series(1, 100) g)
       end
from generate_series(1, ${WIDE_ROWS}) i;
create index wide_customer_idx on public.wide (customer);
create index wide_created_idx on public.wide (created_at);
vacuum analyze public.wide;
SQL
}

# Ensures the cached dump for SIZE_MB exists; sets DUMP_DIR, DUMP and sources its meta.env.
ensure_dataset() {
  local size_mb=$1
  local cache="${BENCH_CACHE_DIR:-$BENCH_ROOT/bench/.cache}"
  DUMP_DIR="$cache/logical-v${DATASET_VERSION}-${size_mb}mb"
  DUMP="$DUMP_DIR/bench.dump"
  if [[ -s "$DUMP" && -s "$DUMP_DIR/meta.env" ]]; then
    log "using cached dump $DUMP"
    # shellcheck disable=SC1091
    source "$DUMP_DIR/meta.env"
    return
  fi
  dataset_plan "$size_mb"
  log "building a ~${size_mb} MB database: pgbench scale $PGBENCH_SCALE + $WIDE_ROWS wide rows"
  local t0 src port env
  t0=$(now_ms)
  src="$BENCH_WORK/source"
  mkdir -p "$src/sock" "$src/out"
  give_to_pg "$src"
  BENCH_CLUSTERS+=("$src/data")
  as_pg -- "$BIN/initdb" -D "$src/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >"$src/initdb.log" 2>&1 ||
    die "initdb of the source cluster failed: $(tail -n 5 "$src/initdb.log")"
  port=$(free_port)
  {
    node "$BENCH_ROOT/bench/pg-settings.mjs" "$BENCH_DIST" | sed -E "s/^([^=]+)=(.*)$/\1 = '\2'/"
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$src/sock'"
  } >>"$src/data/postgresql.conf"
  as_pg -- "$BIN/pg_ctl" -D "$src/data" -l "$src/server.log" -w -t 120 start >/dev/null ||
    die "the source cluster did not start: $(tail -n 5 "$src/server.log")"
  env=(PGHOST=127.0.0.1 "PGPORT=$port" PGUSER=postgres)
  as_pg "${env[@]}" -- "$BIN/createdb" -T template0 bench
  run_wait --out "$src/pgbench.log" --err "$src/pgbench.log" \
    as_pg "${env[@]}" -- "$BIN/pgbench" -i -q -I dtGvp -s "$PGBENCH_SCALE" bench ||
    die "pgbench -i failed: $(tail -n 5 "$src/pgbench.log")"
  wide_table_sql >"$src/wide.sql"
  give_to_pg "$src/wide.sql"
  run_wait --out "$src/wide.log" --err "$src/wide.log" \
    as_pg "${env[@]}" -- "$BIN/psql" -X -q -d bench -f "$src/wide.sql" ||
    die "building the wide table failed: $(tail -n 5 "$src/wide.log")"
  DB_BYTES=$(as_pg "${env[@]}" -- "$BIN/psql" -X -qAt -d bench -c "select pg_database_size('bench')")
  log "database built: $((DB_BYTES / 1048576)) MB in $((($(now_ms) - t0) / 1000)) s; dumping (pg_dump -Fc)"
  run_wait as_pg "${env[@]}" -- "$BIN/pg_dump" -Fc -f "$src/out/bench.dump" bench ||
    die "pg_dump failed"
  # the source cluster is not needed any more: stop and remove it now (cleanup() covers failures)
  as_pg -- "$BIN/pg_ctl" -D "$src/data" -m fast -w -t 60 stop >/dev/null || stop_cluster "$src/data"
  mkdir -p "$cache"
  chmod 755 "$cache"
  rm -rf "$DUMP_DIR.tmp"
  mkdir -p "$DUMP_DIR.tmp"
  mv "$src/out/bench.dump" "$DUMP_DIR.tmp/bench.dump"
  rm -rf "$src"
  if [[ $EUID -eq 0 ]]; then chown -R root: "$DUMP_DIR.tmp"; fi
  chmod 755 "$DUMP_DIR.tmp"
  chmod 644 "$DUMP_DIR.tmp/bench.dump"
  DUMP_BYTES=$(stat -c %s "$DUMP_DIR.tmp/bench.dump")
  BUILT_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  cat >"$DUMP_DIR.tmp/meta.env" <<META
SIZE_MB=$size_mb
PGBENCH_SCALE=$PGBENCH_SCALE
WIDE_ROWS=$WIDE_ROWS
DB_BYTES=$DB_BYTES
DUMP_BYTES=$DUMP_BYTES
BUILT_AT=$BUILT_AT
META
  rm -rf "$DUMP_DIR"
  mv "$DUMP_DIR.tmp" "$DUMP_DIR"
  log "cached $DUMP ($((DUMP_BYTES / 1048576)) MB) after $((($(now_ms) - t0) / 1000)) s"
}
