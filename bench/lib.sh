# Shared helpers of the benchmarks (sourced, not run). Bash 5.
# Everything a benchmark starts is registered here so that cleanup() can stop and remove it
# on every exit path (normal end, error, SIGINT, SIGTERM).

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_WORK=""          # the run's private work directory (mktemp), removed by cleanup
BENCH_CHILD=""         # pid of the long-running child being waited for, if any
BENCH_CLUSTERS=()      # data directories this run may have started a postmaster in
BENCH_DIST=""          # the run's private compiled copy of Attest (inside the repo, for node_modules)
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
  if [[ -n "$BENCH_DIST" ]]; then rm -rf "$BENCH_DIST"; fi
  exit "$rc"
}

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
