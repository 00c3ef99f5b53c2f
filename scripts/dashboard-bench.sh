#!/usr/bin/env bash
# Times dashboard pages with many jobs in Redis (issue 12: "pages stay fast with 1,000,000
# jobs"). Seeds N pending jobs in a fresh namespace of a private redis-server with a Lua
# loop that writes the documented layout (job hash t/u/ca/dd, `due`, `pending`; what
# scheduleJobs writes, minus its replace rule, so seeding takes seconds, not minutes), then
# starts `conveyor dashboard` and times each page with curl (median of RUNS).
# Usage: scripts/dashboard-bench.sh [N] [RUNS]   (needs a built `conveyor`, redis-server, curl)
set -euo pipefail
N="${1:-1000000}"
RUNS="${2:-20}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CONVEYOR_BIN:-$root/.build/release/conveyor}"
[ -x "$bin" ] || bin="$root/.build/debug/conveyor"
work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid ${dash_pid:-} 2>/dev/null; rm -rf "$work"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
ns=bench
seed='
local ns, first, last, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local p = ns .. ":{p0}:"
for id = first, last do
  local t = (id % 10 == 0) and "report" or "mail"
  redis.call("HSET", p .. "job:" .. id, "t", t, "u", tostring(id), "ca", tostring(now), "dd", tostring(id))
  redis.call("ZADD", p .. "due", now + id, id)
  redis.call("HSET", p .. "pending", t .. ":" .. id, id)
end
redis.call("SET", p .. "seq", last)
return last'
now=$(( $(date +%s) * 1000 ))
start=$(date +%s.%N)
for ((first = 1; first <= N; first += 100000)); do
  last=$(( first + 99999 < N ? first + 99999 : N ))
  redis-cli -p "$port" EVAL "$seed" 0 "$ns" "$first" "$last" "$now" >/dev/null
done
echo "seeded $N pending jobs in $(echo "$(date +%s.%N) - $start" | bc) s; used_memory $(redis-cli -p "$port" info memory | grep '^used_memory_human' | cut -d: -f2 | tr -d '\r')"
"$bin" dashboard --port 0 --redis "redis://127.0.0.1:$port" --namespace "$ns" >"$work/dashboard.log" 2>&1 &
dash_pid=$!
until grep -q 'listening on' "$work/dashboard.log" 2>/dev/null; do sleep 0.1; done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/dashboard.log")
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for path in "/jobs?state=pending" "/jobs?state=pending&offset=$((N - 50))" "/jobs?state=pending&offset=$((N / 2))" \
  "/jobs?state=pending&type=report" "/jobs?state=pending&type=mail&user=$((N / 2 + 1))" "/jobs/$((N / 2))" "/" "/cron"; do
  curl -s -o /dev/null "$base$path"
  times=$(for _ in $(seq "$RUNS"); do curl -s -o /dev/null -w '%{time_total}\n' "$base$path"; done | median)
  printf '%-55s median %6.1f ms (%s runs)\n' "$path" "$(echo "$times * 1000" | bc)" "$RUNS"
done
