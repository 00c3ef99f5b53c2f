#!/usr/bin/env bash
# Floors of the producer path on this machine, for issue 14's goals (docs/benchmarks.md,
# "Issue 14, stop 16"): what no client and no script tuning can beat with today's layout.
#
#   scripts/producer-floors.sh [PORT=6401] [REPEAT=3]     # against a private redis-server
#
# 1. One call at a time from a blocking C client (redis-benchmark -c 1, calls/s): PING;
#    EVALSHA of lua/scheduleJobs-10.lua scheduling one plain job with a 100-byte payload
#    (a random userId, so the replace rule finds nothing to cancel); the same call of
#    scripts/floors/scheduleJobs-10.lua, which only writes the job's hash, `due` and `pending`.
# 2. Redis's time per job at 100 jobs per call for the same two scripts
#    (scripts/schedule-call-cost.py --payload-bytes 100).
# Writes only keys under producer-floors:* and schedule-call-cost:*, deleted at the end.
set -euo pipefail
PORT=${1:-6401}; REPEAT=${2:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
R="redis-cli -p $PORT"
P='producer-floors:{p0}:'
KEYS=$(printf "$P%s " seq job: due pending running leases finished wake stale paused)
DATA='{"payload":"'$(printf 'x%.0s' $(seq 100))'"}'
PID=$($R info server | tr -d '\r' | awk -F: '/^process_id:/{print $2}')
expand() { LUA_DIR=$1 python3 -c "import importlib.util,sys; s=importlib.util.spec_from_file_location('c','$HERE/script-cost.py'); m=importlib.util.module_from_spec(s); s.loader.exec_module(m); sys.stdout.write(m.expand('scheduleJobs-10.lua', set()))"; }
cleanup() { $R --scan --pattern 'producer-floors:*' | xargs -r $R unlink >/dev/null; }
trap cleanup EXIT
rate() { redis-benchmark -p "$PORT" -c 1 -n 20000 -r 100000000 --csv "$@" | tail -1 | cut -d, -f2 | tr -d '"'; }
for round in $(seq "$REPEAT"); do
  for dir in "$HERE/../lua" "$HERE/floors"; do
    sha=$($R script load "$(expand "$dir")")
    printf '%-7s one call at a time, %-28s %8.0f calls/s\n' "round $round" "$(basename "$(cd "$dir" && pwd)")/scheduleJobs-10:" \
      "$(rate evalsha "$sha" 10 $KEYS "" 3600000 1 0 1 4 noop __rand_int__ "$DATA" "")"
    printf '%-7s 100 per call, %-35s %s\n' "round $round" "$(basename "$(cd "$dir" && pwd)")/scheduleJobs-10:" \
      "$(LUA_DIR=$dir python3 "$HERE/schedule-call-cost.py" --port "$PORT" --per 100 --jobs 60000 --payload-bytes 100 --pid "$PID" | tail -1)"
    cleanup
  done
  printf '%-7s one call at a time, %-28s %8.0f calls/s\n' "round $round" "PING:" "$(rate ping)"
done
