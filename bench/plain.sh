#!/usr/bin/env bash
# Benchmark of the plain-SQL path (issue #12, item 9): is `attest drill` of a plain dump as fast
# as loading it by hand with psql?
#
#   npm run bench -- --case plain [--rounds R] [--only NAME[,NAME…]] [--no-build] [--rebuild-data]
#
# 1. Builds, once (cached in bench/.cache/plain-v1/, gitignored), with the host's pg_dump:
#      lo       plain .sql of ~52 MB holding 200 large objects of 128 KiB
#      inserts  plain .sql of ~19 MB made with --inserts (130 000 rows)
#      bytea20  .sql.gz of a table with one 20 MiB bytea
#      bytea150 .sql.gz of a table with one 150 MiB bytea
#    The source cluster is stopped and removed right after the dumps.
# 2. For each dump, R rounds (default 1), the order alternated each round, of
#      by hand: as the PostgreSQL user, initdb with Attest's throwaway settings, start; then the
#               restore: createdb, `psql -X -q -v ON_ERROR_STOP=1 -f DUMP >/dev/null` (or
#               `gunzip -c DUMP | psql …`); stop, rm;
#      attest:  `attest drill --json` of that one dump (checks: no amcheck, full read or write).
# 3. Prints, per dump, the medians and three ratios: restore phase (Attest's vs createdb + psql
#    by hand), scan + restore (Attest's preflight scan added: both then read the whole dump) and
#    whole drill (Attest's wall time vs everything by hand). Target ≤ 1.2. Keeps the table in
#    bench/.cache/results/.
set -Eeuo pipefail
set -m

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PLAIN_VERSION=1
ROUNDS=1
BUILD=1
REBUILD=0
ONLY="lo,inserts,bytea20,bytea150"
usage() { sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
  --rounds) ROUNDS="${2:?--rounds needs a number}"; shift 2 ;;
  --rounds=*) ROUNDS="${1#*=}"; shift ;;
  --only) ONLY="${2:?--only needs names}"; shift 2 ;;
  --only=*) ONLY="${1#*=}"; shift ;;
  --no-build) BUILD=0; shift ;;
  --rebuild-data) REBUILD=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 ]] || { echo "--rounds must be an integer ≥ 1" >&2; exit 2; }
IFS=, read -r -a CASES <<<"$ONLY"
for c in "${CASES[@]}"; do
  [[ "$c" =~ ^(lo|inserts|bytea20|bytea150)$ ]] || { echo "--only takes lo, inserts, bytea20, bytea150 (got $c)" >&2; exit 2; }
done

BIN="$(pg_bin)"
PG_VERSION="$("$BIN/postgres" --version | awk '{print $3}')"
require_pg_user
bench_setup "$BUILD"
DATA="$CACHE/plain-v$PLAIN_VERSION"
if ((REBUILD)); then rm -rf "$DATA"; fi
require_free_mb 2500

# ---------------------------------------------------------------------------------------------
# the dumps

# dump_file NAME: the cached dump of that case
dump_file() {
  case "$1" in
  lo | inserts) echo "$DATA/$1/$1.sql" ;;
  *) echo "$DATA/$1/$1.sql.gz" ;;
  esac
}

build_dumps() {
  [[ -f "$DATA/.complete" ]] && return 0
  log "building the plain dumps into $DATA (once)"
  local tmp="$DATA.tmp.$$" d="$BENCH_WORK/plain-src"
  BENCH_REMOVE+=("$tmp")
  rm -rf "$tmp"
  mkdir -p "$tmp"/{lo,inserts,bytea20,bytea150}
  mkdir -m 700 "$d" "$d/sock" "$d/out"
  give_to_pg "$d"
  BENCH_CLUSTERS+=("$d/data")
  as_pg -- "$BIN/initdb" -D "$d/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$d/initdb.log" 2>&1 ||
    die "initdb failed: $(tail -n 3 "$d/initdb.log")"
  as_pg -- "$BIN/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories=$d/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=4GB" \
    start >/dev/null || die "source server did not start: $(tail -n 5 "$d/server.log")"
  local pg=(PGHOST="$d/sock" PGUSER=postgres)
  sql() { as_pg "${pg[@]}" -- "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$1" >/dev/null; }
  as_pg "${pg[@]}" -- "$BIN/psql" -X -q -d postgres -c "CREATE DATABASE lo" -c "CREATE DATABASE inserts" \
    -c "CREATE DATABASE bytea20" -c "CREATE DATABASE bytea150" >/dev/null
  # 128 KiB of hex-decoded md5s per object: incompressible, as documents are
  sql lo <<'SQL'
CREATE TABLE public.docs (id int PRIMARY KEY, title text NOT NULL, doc oid NOT NULL);
INSERT INTO public.docs
  SELECT g, 'document ' || g, lo_from_bytea(0, (SELECT decode(string_agg(md5(g || ':' || h), ''), 'hex')
                                                 FROM generate_series(1, 8192) h))
  FROM generate_series(1, 200) g;
SQL
  sql inserts <<'SQL'
CREATE TABLE public.orders (id int PRIMARY KEY, customer text NOT NULL, ref text NOT NULL,
                            amount numeric(12,2) NOT NULL, at timestamptz NOT NULL, note text);
INSERT INTO public.orders
  SELECT g, 'customer ' || (g % 5000), md5(g::text), (g % 100000) / 100.0,
         timestamptz '2026-01-01 00:00+00' + g * interval '1 minute',
         CASE WHEN g % 3 = 0 THEN 'it''s a note' END
  FROM generate_series(1, 130000) g;
SQL
  local mib
  for mib in 20 150; do
    # one value of MIB MiB: 65536 md5s (16 bytes each) per MiB
    sql "bytea$mib" <<SQL
CREATE TABLE public.blob (id int PRIMARY KEY, name text NOT NULL, b bytea NOT NULL);
INSERT INTO public.blob
  SELECT 1, 'blob of $mib MiB', decode(string_agg(md5('b:' || h), ''), 'hex') FROM generate_series(1, 65536 * $mib) h;
SQL
  done
  local name
  for name in lo inserts bytea20 bytea150; do
    local extra=()
    [[ "$name" == inserts ]] && extra=(--inserts)
    as_pg "${pg[@]}" -- "$BIN/pg_dump" --no-sync "${extra[@]}" -Fp -f "$d/out/$name.sql" "$name" ||
      die "pg_dump $name failed"
  done
  stop_cluster "$d/data"
  mv "$d/out/lo.sql" "$tmp/lo/lo.sql"
  mv "$d/out/inserts.sql" "$tmp/inserts/inserts.sql"
  gzip -c "$d/out/bytea20.sql" >"$tmp/bytea20/bytea20.sql.gz"
  gzip -c "$d/out/bytea150.sql" >"$tmp/bytea150/bytea150.sql.gz"
  rm -rf "$d"
  chmod -R a+rX "$tmp"
  touch "$tmp/.complete"
  rm -rf "$DATA"
  mv "$tmp" "$DATA"
  log "dumps built: $(du -sh "$DATA" | cut -f1)"
}
build_dumps
# readable by the PostgreSQL user (by hand) and by Attest's confined reader
chmod a+rx "$CACHE" "$DATA" "$DATA"/*

# ---------------------------------------------------------------------------------------------
# (a) by hand

attest_settings SERVER_SETTINGS

# hand_run NAME ROUND: sets R_WALL, R_PROVISION, R_RESTORE, R_TEARDOWN (ms)
hand_run() {
  local name=$1 round=$2 file d port t0 t1 t2 t3
  file="$(dump_file "$name")"
  d="$BENCH_WORK/hand-$name-$round"
  port=$(free_port)
  local pgenv=(PGHOST="$d/sock" "PGPORT=$port" PGUSER=postgres PGDATABASE=postgres)
  t0=$(now_ms)
  mkdir -m 700 "$d" "$d/sock"
  give_to_pg "$d"
  BENCH_CLUSTERS+=("$d/data")
  as_pg -- "$BIN/initdb" -D "$d/data" -U postgres --auth-local=trust -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$d/initdb.log" 2>&1 || die "initdb (by hand) failed: $(tail -n 5 "$d/initdb.log")"
  {
    local kv
    for kv in "${SERVER_SETTINGS[@]}"; do printf "%s = '%s'\n" "${kv%%=*}" "${kv#*=}"; done
    echo "port = $port"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$d/sock'"
  } >>"$d/data/postgresql.conf"
  as_pg -- "$BIN/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 60 start >/dev/null ||
    die "postgres (by hand) did not start: $(tail -n 5 "$d/server.log")"
  t1=$(now_ms)
  # the restore: CREATE DATABASE and the load, as Attest's restore phase does them
  as_pg "${pgenv[@]}" -- "$BIN/createdb" -T template0 "$name"
  local psql=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 --no-password -d "$name")
  if [[ "$file" == *.gz ]]; then
    run_wait --out /dev/null --err "$BENCH_WORK/out/hand-$name-$round.log" \
      as_pg "${pgenv[@]}" -- sh -c 'f=$1; shift; gunzip -c "$f" | "$@"' sh "$file" "${psql[@]}" -f - ||
      die "gunzip | psql (by hand) failed: $(tail -n 5 "$BENCH_WORK/out/hand-$name-$round.log")"
  else
    run_wait --out /dev/null --err "$BENCH_WORK/out/hand-$name-$round.log" as_pg "${pgenv[@]}" -- "${psql[@]}" -f "$file" ||
      die "psql -f (by hand) failed: $(tail -n 5 "$BENCH_WORK/out/hand-$name-$round.log")"
  fi
  t2=$(now_ms)
  as_pg -- "$BIN/pg_ctl" -D "$d/data" -m fast -w -t 60 stop >/dev/null || stop_cluster "$d/data"
  rm -rf "$d"
  t3=$(now_ms)
  R_WALL=$((t3 - t0))
  R_PROVISION=$((t1 - t0))
  R_RESTORE=$((t2 - t1))
  R_TEARDOWN=$((t3 - t2))
}

# ---------------------------------------------------------------------------------------------
# (b) attest drill of the one dump

write_config() { # NAME
  local name=$1
  mkdir -p "$BENCH_WORK/reports-$name"
  cat >"$BENCH_WORK/attest-$name.yml" <<YAML
# generated by bench/plain.sh
organization: { name: Attest bench }
sandbox:
  runtime: local
  timeout: 4h
  local: { bin_dir: "$BIN", work_dir: "$BENCH_WORK" }
sources:
  - name: $name
    type: dump-dir
    path: "$DATA/$name"
    checks: { amcheck: false, full_read: false, write: false, inventory: { compare: false } }
history: { csv: "$BENCH_WORK/reports-$name/history.csv" }
reports: { dir: "$BENCH_WORK/reports-$name", pdf: false, json: true }
YAML
}

# attest_run NAME ROUND: sets R_WALL, R_PREFLIGHT, R_RESTORE (ms)
attest_run() {
  local name=$1 round=$2 out
  out="$BENCH_WORK/out/attest-$name-$round"
  attest_drill "$out" "$BENCH_WORK/attest-$name.yml" "$name"
  if ((R_RC != 0)) || [[ "$R_VERDICT" != pass && "$R_VERDICT" != warn ]]; then
    die "attest drill of $name exited $R_RC with verdict $R_VERDICT: $(tail -n 5 "$out.log")"
  fi
  read -r R_PREFLIGHT R_RESTORE < <(node -e '
const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).drills[0].timings;
console.log(d.preflightMs ?? 0, d.restoreMs);' "$out.json")
}

# ---------------------------------------------------------------------------------------------
# the rounds

RESULTS="$BENCH_WORK/results.tsv"
printf 'case\tround\tvariant\twall_ms\tprovision_ms\tpreflight_ms\trestore_ms\tteardown_ms\trss_kb\n' >"$RESULTS"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
for name in "${CASES[@]}"; do
  write_config "$name"
  for ((r = 1; r <= ROUNDS; r++)); do
    order=(hand attest)
    ((r % 2 == 0)) && order=(attest hand)
    for v in "${order[@]}"; do
      if [[ "$v" == hand ]]; then
        hand_run "$name" "$r"
        printf '%s\t%s\thand\t%s\t%s\t\t%s\t%s\t\n' "$name" "$r" "$R_WALL" "$R_PROVISION" "$R_RESTORE" "$R_TEARDOWN" >>"$RESULTS"
        log "$name round $r by hand: $(secs "$R_WALL") s (psql $(secs "$R_RESTORE") s)"
      else
        attest_run "$name" "$r"
        printf '%s\t%s\tattest\t%s\t\t%s\t%s\t\t%s\n' "$name" "$r" "$R_WALL" "$R_PREFLIGHT" "$R_RESTORE" "$R_RSS_KB" >>"$RESULTS"
        log "$name round $r attest: $(secs "$R_WALL") s (preflight $(secs "$R_PREFLIGHT") s, restore $(secs "$R_RESTORE") s)"
      fi
    done
  done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

mkdir -p "$CACHE/results"
stamp="$(date -u +%Y%m%dT%H%M%SZ)-plain"
node - "$RESULTS" "$PG_VERSION" "$LOAD_START" "$LOAD_END" "$DATA" <<'JS' | tee "$CACHE/results/$stamp.txt"
const fs = require("fs");
const [tsv, pgVersion, loadStart, loadEnd, data] = process.argv.slice(2);
const [head, ...lines] = fs.readFileSync(tsv, "utf8").trim().split("\n");
const cols = head.split("\t");
const rows = lines.map((l) => Object.fromEntries(l.split("\t").map((v, i) => [cols[i], v === "" ? undefined : Number.isNaN(Number(v)) ? v : Number(v)])));
const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const s = (ms) => (Number.isFinite(ms) ? (ms / 1000).toFixed(1) : "-");
const files = { lo: "lo/lo.sql", inserts: "inserts/inserts.sql", bytea20: "bytea20/bytea20.sql.gz", bytea150: "bytea150/bytea150.sql.gz" };
const what = { lo: "52 MB plain, 200 large objects", inserts: "19 MB plain --inserts", bytea20: ".sql.gz, one 20 MiB bytea", bytea150: ".sql.gz, one 150 MiB bytea" };
const out = [];
out.push(`plain-path benchmark (PostgreSQL ${pgVersion}, ${require("os").cpus().length} CPUs, load ${loadStart} → ${loadEnd})`);
out.push("");
out.push("dump                                size   by hand: restore   wall   attest: restore  scan+restore   wall   ratios: restore  scan+restore  drill");
for (const c of [...new Set(rows.map((r) => r.case))]) {
  const h = rows.filter((r) => r.case === c && r.variant === "hand");
  const a = rows.filter((r) => r.case === c && r.variant === "attest");
  const hp = median(h.map((r) => r.restore_ms));
  const hw = median(h.map((r) => r.wall_ms));
  const ap = median(a.map((r) => r.restore_ms));
  const ar = median(a.map((r) => r.preflight_ms + r.restore_ms));
  const aw = median(a.map((r) => r.wall_ms));
  const size = (fs.statSync(`${data}/${files[c]}`).size / 1048576).toFixed(0);
  const ratios = [ap / hp, ar / hp, aw / hw];
  out.push(
    `${what[c].padEnd(34)} ${`${size} MB`.padStart(5)}  ${s(hp).padStart(16)}  ${s(hw).padStart(5)}  ${s(ap).padStart(15)}  ${s(ar).padStart(12)}  ${s(aw).padStart(5)}  ${ratios[0].toFixed(2).padStart(15)}  ${ratios[1].toFixed(2).padStart(12)}  ${ratios[2].toFixed(2).padStart(5)}${ratios.some((x) => x > 1.2) ? "  (> 1.2)" : ""}`,
  );
}
out.push("");
out.push("restore: Attest's restore phase / createdb + psql by hand; scan+restore: with Attest's preflight");
out.push("scan added (both then read the whole dump); drill: attest drill wall time / initdb + restore +");
out.push("teardown by hand. Medians of the rounds; target ≤ 1.2.");
console.log(out.join("\n"));
JS
if [[ -n "${BENCH_TABLE_OUT:-}" ]]; then cp "$CACHE/results/$stamp.txt" "$BENCH_TABLE_OUT"; fi
log "table kept in $CACHE/results/$stamp.txt"
