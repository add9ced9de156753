#!/usr/bin/env bash
# `npm run bench [-- --case logical|docker|physical|inspect|all] [options]` (scripts/bench.sh).
#
#   logical   (default) attest drill vs the same logical restore by hand (bench/logical.sh)
#   docker    the cached dump by hand on the host, attest drill local, attest drill docker, by
#             hand inside a container; sandbox start time (bench/docker.sh)
#   physical  a pg_basebackup tar.gz + WAL archive replayed by hand and by attest drill; WAL
#             replay rate (bench/physical.sh)
#   inspect   attest list / check on a WAL archive of 100 000 segment names (bench/inspect.sh)
#   all       each of them in turn with one compiled copy of Attest; then every table again
#
# Options go to the case (see `npm run bench -- --case NAME --help`): --size-mb N, --rounds R,
# --jobs J, --no-build, --rebuild-data, --no-default-checks (logical), --startup-samples S
# (docker), --traffic-seconds T (physical), --segments N, --runs R (inspect). With --case all,
# each case gets the options it knows.
set -Eeuo pipefail
set -m

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CASE=logical
ARGS=()
HELP=0
while [[ $# -gt 0 ]]; do
  case "$1" in
  --case) CASE="${2:?--case needs logical, docker, physical, inspect or all}"; shift 2 ;;
  --case=*) CASE="${1#*=}"; shift ;;
  -h | --help) HELP=1; ARGS+=("$1"); shift ;;
  *) ARGS+=("$1"); shift ;;
  esac
done
case "$CASE" in
logical | docker | physical | inspect)
  if ((HELP)); then sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; echo; fi
  exec bash "$BENCH_ROOT/bench/$CASE.sh" "${ARGS[@]}"
  ;;
all) ;;
*) echo "--case must be logical, docker, physical, inspect or all (got: $CASE)" >&2; exit 2 ;;
esac
if ((HELP)); then sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0; fi

# which case takes which option (options with a value take the next word unless given as --x=v)
declare -A TAKES=(
  [--size-mb]="logical docker physical" [--rounds]="logical docker physical" [--jobs]="logical docker"
  [--no-build]="logical docker physical inspect" [--rebuild-data]="logical docker physical"
  [--no-default-checks]="logical" [--startup-samples]="docker" [--traffic-seconds]="physical"
  [--segments]="inspect" [--runs]="inspect"
)
declare -A FLAG=([--no-build]=1 [--rebuild-data]=1 [--no-default-checks]=1)
args_for() { # case → the words of ARGS that case takes, one per line
  local c=$1 i=0 opt
  while ((i < ${#ARGS[@]})); do
    opt="${ARGS[$i]%%=*}"
    [[ -n "${TAKES[$opt]:-}" ]] || { echo "unknown argument: ${ARGS[$i]}" >&2; exit 2; }
    if [[ " ${TAKES[$opt]} " == *" $c "* ]]; then
      printf '%s\n' "${ARGS[$i]}"
      if [[ -z "${FLAG[$opt]:-}" && "${ARGS[$i]}" != *=* ]]; then printf '%s\n' "${ARGS[$((i + 1))]:?$opt needs a value}"; fi
    fi
    if [[ -z "${FLAG[$opt]:-}" && "${ARGS[$i]}" != *=* ]]; then i=$((i + 2)); else i=$((i + 1)); fi
  done
}
for c in logical docker physical inspect; do args_for "$c" >/dev/null; done

cd "$BENCH_ROOT"
bench_init_work
BUILD=1
for a in "${ARGS[@]}"; do [[ "$a" == --no-build ]] && BUILD=0; done
bench_compile "$BUILD"
export BENCH_SHARED_DIST="$BENCH_DIST"

STARTED_AT=$(now_ms)
failed=()
for c in logical docker physical inspect; do
  mapfile -t cargs < <(args_for "$c")
  log "=== case $c: bench/$c.sh ${cargs[*]}"
  rc=0
  export BENCH_TABLE_OUT="$BENCH_WORK/table-$c.txt"
  run_wait bash "$BENCH_ROOT/bench/$c.sh" "${cargs[@]}" || rc=$?
  ((rc == 0)) || { failed+=("$c (exit $rc)"); log "case $c failed (exit $rc)"; }
  ((rc == 130 || rc == 143)) && exit "$rc"
done
echo
echo "================ every table of this run ($(($(($(now_ms) - STARTED_AT)) / 60000)) min) ================"
for c in logical docker physical inspect; do
  echo
  if [[ -s "$BENCH_WORK/table-$c.txt" ]]; then cat "$BENCH_WORK/table-$c.txt"; else echo "($c: no table, the case failed)"; fi
done
((${#failed[@]} == 0)) || die "failed: ${failed[*]}"
