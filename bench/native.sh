# The native by-hand logical restore on the host (sourced after lib.sh; used by logical.sh and
# docker.sh): as the PostgreSQL user, initdb with Attest's throwaway settings, start on a free
# loopback port, createdb, pg_restore -jJOBS --exit-on-error, the row counts of Attest's
# inventory check (which always runs), pg_amcheck --heapallindexed, stop, rm. Needs BIN, JOBS, DUMP, SERVER_SETTINGS (bench/pg-settings.mjs) and $BENCH_WORK/out.
# Sets R_WALL, R_PROVISION, R_RESTORE, R_CHECKS, R_TEARDOWN (ms).
#   native_logical_run ROUND [TAG]

native_logical_run() {
  local round=$1 tag=${2:-native}
  local d="$BENCH_WORK/$tag-$round" port t0 t1 t2 t3 t4 rc=0
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
  run_wait --err "$BENCH_WORK/out/$tag-$round.restore.log" \
    as_pg "${pgenv[@]}" -- "$BIN/pg_restore" -j "$JOBS" --exit-on-error --no-password -d bench "$DUMP" || die "native pg_restore failed: $(tail -n 5 "$BENCH_WORK/out/$tag-$round.restore.log")"
  t2=$(now_ms)
  # checks: what Attest's inventory check does by hand (it always runs: every table counted,
  # FROM ONLY), then the same pg_amcheck invocation as Attest's amcheck check
  as_pg "${pgenv[@]}" -- "$BIN/psql" -X -At -v ON_ERROR_STOP=1 --no-password -d bench -c "$INVENTORY_COUNTS" |
    as_pg "${pgenv[@]}" -- "$BIN/psql" -X -At -v ON_ERROR_STOP=1 --no-password -d bench -f - >/dev/null ||
    die "native row counts failed"
  run_wait --out "$BENCH_WORK/out/$tag-$round.amcheck.log" --err "$BENCH_WORK/out/$tag-$round.amcheck.err" \
    as_pg "${pgenv[@]}" -- "$BIN/pg_amcheck" --heapallindexed --install-missing --no-password --jobs 2 -d bench || rc=$?
  ((rc == 0)) || die "native pg_amcheck exited with $rc: $(tail -n 5 "$BENCH_WORK/out/$tag-$round.amcheck."{log,err})"
  t3=$(now_ms)
  # teardown
  as_pg -- "$BIN/pg_ctl" -D "$d/data" -m fast -w -t 60 stop >/dev/null || stop_cluster "$d/data"
  rm -rf "$d"
  t4=$(now_ms)
  R_WALL=$((t4 - t0))
  R_PROVISION=$((t1 - t0))
  R_RESTORE=$((t2 - t1))
  R_CHECKS=$((t3 - t2))
  R_TEARDOWN=$((t4 - t3))
}

# One `select count(*) from only <table>;` per table of the restored database: the statements
# Attest's inventory check runs (src/checks/inventory.ts: every ordinary table and partition;
# a partitioned parent has no rows of its own, a materialized view is not counted).
# shellcheck disable=SC2034 # used by native_logical_run and docker.sh
INVENTORY_COUNTS="select format('select count(*) from only %I.%I;', n.nspname, c.relname)
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema')
    and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'
  order by 1"
