# Shared helpers of the benchmarks (sourced, not run). Bash 5.
# Everything a benchmark starts is registered here so that cleanup() can stop and remove it
# on every exit path (normal end, error, SIGINT, SIGTERM).

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_WORK=""          # the run's private work directory (mktemp), removed by cleanup
BENCH_CHILD=""         # pid of the long-running child being waited for, if any
BENCH_CLUSTERS=()      # data directories this run may have started a postmaster in
BENCH_DIST=""          # the run's private compiled copy of Attest (inside the repo, for node_modules)
BENCH_DIST_OWNED=0     # 1 when this script compiled BENCH_DIST itself (cleanup removes it then)
BENCH_DOCKER=0         # 1 when this run uses Docker: cleanup removes its containers (below)
BENCH_DOCKER_LABEL=""  # key=value label every container the bench itself starts carries
BENCH_RUN_ID="bench-$$-$(date +%s)"
BENCH_REMOVE=()        # more paths cleanup removes (half-built cache entries, temporary archives)
BENCH_PG_USER="${BENCH_PG_USER:-postgres}"

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Newest PostgreSQL bin directory on the host (override with PG_BIN).
pg_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then
    printf '%s\n' "$PG_BIN"
    return
  fi
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$d" && -x "$d/initdb" ]] || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (set PG_BIN)"
  printf '%s\n' "$d"
}

# Runs a command as the PostgreSQL OS user (root → runuser; otherwise as ourselves), with
# the given VAR=value words as its whole libpq environment: as_pg VAR=v ... -- cmd args...
as_pg() {
  local envs=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do
    envs+=("$1")
    shift
  done
  shift
  if [[ $EUID -eq 0 ]]; then
    runuser -u "$BENCH_PG_USER" -- env -i PATH="$BIN:/usr/bin:/bin" LANG=C.UTF-8 "${envs[@]}" "$@"
  else
    env -i PATH="$BIN:/usr/bin:/bin" LANG=C.UTF-8 HOME="${HOME:-/tmp}" "${envs[@]}" "$@"
  fi
}

# chown to the PostgreSQL OS user when we are root.
give_to_pg() {
  if [[ $EUID -eq 0 ]]; then chown -R "$BENCH_PG_USER": "$@"; fi
}

# A free TCP port on 127.0.0.1 (same method as Attest: bind port 0, read it back, close).
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Wall clock in milliseconds.
now_ms() {
  local t=${EPOCHREALTIME/[.,]/}
  echo $((t / 1000))
}

# Runs a command in the background and waits for it, so a signal's trap runs at once
# (bash defers traps while a foreground child runs); cleanup() ends BENCH_CHILD's process
# group (the caller runs with `set -m`, so each background job is its own group).
#   run_wait [--out FILE] [--err FILE] command args...
# (redirect through the options, not around the call: a redirection around a function call
# would also capture the trap's own messages)
run_wait() {
  local out="" err=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
    --out) out=$2; shift 2 ;;
    --err) err=$2; shift 2 ;;
    *) break ;;
    esac
  done
  if [[ -n "$out" && "$out" == "$err" ]]; then
    "$@" >"$out" 2>&1 &
  elif [[ -n "$out" && -n "$err" ]]; then
    "$@" >"$out" 2>"$err" &
  elif [[ -n "$out" ]]; then
    "$@" >"$out" &
  elif [[ -n "$err" ]]; then
    "$@" 2>"$err" &
  else
    "$@" &
  fi
  BENCH_CHILD=$!
  local rc=0
  wait "$BENCH_CHILD" || rc=$?
  BENCH_CHILD=""
  return "$rc"
}

# The postmaster pid of a data directory, if its postmaster.pid names a live process.
postmaster_pid() {
  local f="$1/postmaster.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(head -n 1 "$f" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && printf '%s\n' "$pid"
}

# Stops the postmaster of a data directory: pg_ctl immediate, then SIGKILL of that pid.
stop_cluster() {
  local dir="$1" pid
  pid="$(postmaster_pid "$dir")" || return 0
  as_pg -- "$BIN/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    sleep 1
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$BENCH_CHILD" ]] && kill -0 "$BENCH_CHILD" 2>/dev/null; then
    log "stopping child $BENCH_CHILD"
    # Attest destroys its sandboxes on SIGTERM; pg_restore/pg_amcheck simply end
    kill -TERM -- "-$BENCH_CHILD" 2>/dev/null || kill -TERM "$BENCH_CHILD" 2>/dev/null || true
    # a `docker run` client waits for its container (PID 1 there ignores the forwarded TERM):
    # remove the bench's own containers now, so it returns at once
    docker_remove_labelled
    # wait for the whole group (Attest tears its sandbox down after its wrapper has gone)
    for _ in $(seq 1 60); do
      kill -0 -- "-$BENCH_CHILD" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-$BENCH_CHILD" 2>/dev/null || true
  fi
  if [[ -n "$BENCH_WORK" && -d "$BENCH_WORK" ]]; then
    local d
    for d in "${BENCH_CLUSTERS[@]}" "$BENCH_WORK"/attest-sandboxes/*/data; do
      [[ -d "$d" ]] && stop_cluster "$d"
    done
    rm -rf "$BENCH_WORK"
  fi
  docker_cleanup
  local p
  for p in "${BENCH_REMOVE[@]}"; do [[ -n "$p" ]] && rm -rf "$p"; done
  if [[ -n "$BENCH_DIST" ]] && ((BENCH_DIST_OWNED)); then rm -rf "$BENCH_DIST"; fi
  exit "$rc"
}

# Removes the containers of this run: the bench's own (by BENCH_DOCKER_LABEL), Attest
# sandboxes of the start-up samples (label attest.run=BENCH_RUN_ID), and Attest sandboxes of the
# bench's drills (label attest.source=BENCH_DOCKER_SOURCE) whose owning process is gone — the
# rule of Attest's own sweep, so nobody else's sandbox (a test suite's) is touched.
BENCH_DOCKER_SOURCE="attest-bench"
docker_cleanup() {
  ((BENCH_DOCKER)) || return 0
  command -v docker >/dev/null 2>&1 || return 0
  local id pid host me
  docker_remove_labelled
  me="$(hostname)"
  while read -r id pid host; do
    [[ -n "$id" && "$host" == "$me" ]] || continue
    if [[ ! "$pid" =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
      log "removing leftover Attest sandbox container $id of the bench (owner pid $pid is gone)"
      docker rm -f -v "$id" >/dev/null 2>&1 || true
    fi
  done < <(docker ps -a --filter "label=attest.source=$BENCH_DOCKER_SOURCE" --format '{{.ID}} {{.Label "attest.pid"}} {{.Label "attest.host"}}' 2>/dev/null || true)
}

# Removes the bench's own containers and the start-up samples' sandboxes (both carry this run's id).
docker_remove_labelled() {
  ((BENCH_DOCKER)) || return 0
  command -v docker >/dev/null 2>&1 || return 0
  local ids
  ids="$(
    [[ -n "$BENCH_DOCKER_LABEL" ]] && docker ps -aq --filter "label=$BENCH_DOCKER_LABEL" 2>/dev/null
    docker ps -aq --filter "label=attest.run=$BENCH_RUN_ID" 2>/dev/null
    true
  )"
  if [[ -n "$ids" ]]; then
    log "removing bench containers: $(echo $ids)"
    # shellcheck disable=SC2086
    docker rm -f -v $ids >/dev/null 2>&1 || true
  fi
}

# Containers of this run still present: "<bench-labelled> <Attest sandboxes of the bench> <every attest.run container>".
docker_leftovers() {
  local n=0 m=0 all=0
  [[ -n "$BENCH_DOCKER_LABEL" ]] && n=$(docker ps -aq --filter "label=$BENCH_DOCKER_LABEL" | wc -l)
  m=$(
    {
      docker ps -aq --filter "label=attest.run=$BENCH_RUN_ID"
      docker ps -aq --filter "label=attest.source=$BENCH_DOCKER_SOURCE"
    } | sort -u | wc -l
  )
  all=$(docker ps -aq --filter label=attest.run | wc -l)
  echo "$n $m $all"
}

# Sets BENCH_DIST to a compiled Attest: the copy bench/run.sh made for every case
# (BENCH_SHARED_DIST), or a private one compiled now (tsc; with build=0 a copy of dist/).
# The copy sits inside the repository so its imports resolve against node_modules/.
#   bench_compile BUILD(0|1)
bench_compile() {
  local build=$1
  if [[ -n "${BENCH_SHARED_DIST:-}" && -f "$BENCH_SHARED_DIST/cli/main.js" ]]; then
    BENCH_DIST="$BENCH_SHARED_DIST"
    BENCH_DIST_OWNED=0
    log "using the compiled copy $BENCH_DIST"
    return
  fi
  BENCH_DIST="$BENCH_ROOT/bench/.cache/dist.$$"
  BENCH_DIST_OWNED=1
  mkdir -p "$BENCH_ROOT/bench/.cache"
  if ((build)); then
    log "compiling the CLI (tsc -p tsconfig.json, into $BENCH_DIST)"
    if ! (cd "$BENCH_ROOT" && npx --no-install tsc -p tsconfig.json --outDir "$BENCH_DIST" --sourceMap false) >"$BENCH_WORK/tsc.log" 2>&1; then
      # tsc still emits on type errors; what is measured is what the working tree compiles to
      log "tsc reported $(grep -c 'error TS' "$BENCH_WORK/tsc.log") type error(s) but emitted; first: $(grep -m1 'error TS' "$BENCH_WORK/tsc.log")"
    fi
    # what `npm run build` ships: the CLI bundled, so start-up is measured as users get it
    if ! (cd "$BENCH_ROOT" && node scripts/bundle-cli.mjs --dist "$BENCH_DIST") >>"$BENCH_WORK/tsc.log" 2>&1; then
      log "bundling the CLI failed (measuring tsc's unbundled output): $(tail -n 3 "$BENCH_WORK/tsc.log" | tr '\n' ' ')"
    fi
  else
    [[ -f "$BENCH_ROOT/dist/cli/main.js" ]] || die "dist/ is missing: run npx tsc -p . first (or drop --no-build)"
    cp -a "$BENCH_ROOT/dist" "$BENCH_DIST"
  fi
  [[ -f "$BENCH_DIST/cli/main.js" && -f "$BENCH_DIST/runtimes/local/local-sandbox.js" ]] || die "the CLI did not compile: $(tail -n 5 "$BENCH_WORK/tsc.log" 2>/dev/null)"
}

# Runs `attest drill --json --no-mail` of one source with its own peak RSS recorded; sets
# R_WALL (ms), R_RC, R_VERDICT, R_RSS_KB (own process), R_TREE_KB (with waited children).
#   attest_drill OUT_PREFIX CONFIG SOURCE [more attest drill options...]
attest_drill() {
  local out=$1 config=$2 source=$3 t0 t1 timecmd=()
  shift 3
  [[ -x /usr/bin/time ]] && timecmd=(/usr/bin/time -f '%M' -o "$out.time")
  R_RC=0
  t0=$(now_ms)
  run_wait --out "$out.json" --err "$out.log" \
    env "BENCH_PEAK_RSS_FILE=$out.rss" "${timecmd[@]}" node --import "$BENCH_ROOT/bench/peak-rss.mjs" \
    "$BENCH_DIST/cli/main.js" drill --config "$config" --source "$source" --json --no-mail "$@" || R_RC=$?
  t1=$(now_ms)
  R_WALL=$((t1 - t0))
  R_VERDICT="$(node -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(d.drills?.[0]?.verdict ?? d.status ?? "?")' "$out.json" 2>/dev/null || echo '?')"
  R_RSS_KB="$(cat "$out.rss" 2>/dev/null || true)"
  R_TREE_KB="$(tail -n 1 "$out.time" 2>/dev/null || true)"
}

# Seconds with one decimal, from milliseconds.
secs() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }

# Creates the private work directory and installs the traps.
bench_init_work() {
  local base="${BENCH_WORK_BASE:-/var/tmp}"
  BENCH_WORK="$(mktemp -d "$base/attest-bench.XXXXXX")"
  # the PostgreSQL user must traverse into its own subdirectories, not list ours
  chmod 711 "$BENCH_WORK"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# bench_setup BUILD: the work directory with its traps, the private compiled Attest (BUILD=1
# compiles, 0 copies dist/) and CACHE, the folder datasets are kept in between runs.
bench_setup() {
  cd "$BENCH_ROOT"
  bench_init_work
  log "work directory $BENCH_WORK"
  mkdir -p "$BENCH_WORK/out"
  CACHE="${BENCH_CACHE_DIR:-$BENCH_ROOT/bench/.cache}"
  bench_compile "$1"
}

# require_pg_user: as root, the OS user PostgreSQL runs as must exist.
require_pg_user() {
  if [[ $EUID -eq 0 ]]; then
    id "$BENCH_PG_USER" >/dev/null 2>&1 || die "running as root, but there is no OS user $BENCH_PG_USER to run PostgreSQL as"
  fi
}

# require_free_mb NEED: the work directory's filesystem has more than NEED MB free.
require_free_mb() {
  local free_mb
  free_mb=$(df -Pm "$BENCH_WORK" | awk 'NR == 2 { print $4 }')
  ((free_mb > $1)) || die "$free_mb MB free under $BENCH_WORK, need about $1 MB"
}

# attest_settings ARRAY [--physical]: the server settings the compiled Attest uses, so the
# by-hand runs match it setting for setting.
attest_settings() {
  local -n into=$1
  shift
  mapfile -t into < <(node "$BENCH_ROOT/bench/pg-settings.mjs" "$BENCH_DIST" "$@")
  ((${#into[@]} > 5)) || die "could not read the server settings from the compiled Attest"
}
