#!/usr/bin/env bash
# Issue 13's cluster benchmark: end-to-end throughput of the same worker processes on a
# Redis Cluster of 1, 2 and 3 masters (no replicas), and each master's redis-server CPU
# seconds per 1,000 jobs (/proc/<pid>/stat), the figure that shows scaling on few cores.
#   scripts/cluster-bench.sh            (CONVEYOR_BIN=.build/release/conveyor by default)
#   JOBS=20000 WORKERS=2 CONCURRENCY=64 PARTITIONS=6 MASTERS="1 2 3" scripts/cluster-bench.sh
# redis-cli --cluster create wants 3 masters, so the nodes are joined by hand
# (CLUSTER ADDSLOTSRANGE, CLUSTER MEET). Jobs are `noop` jobs of the example app, scheduled
# up front with `conveyor schedule --from`; the clock runs from the workers' start until
# `conveyor jobs counts` shows nothing pending or running.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${CONVEYOR_BIN:-.build/release/conveyor}
JOBS=${JOBS:-20000}
WORKERS=${WORKERS:-2}
CONCURRENCY=${CONCURRENCY:-64}
PARTITIONS=${PARTITIONS:-6}
MASTERS=${MASTERS:-"1 2 3"}
[ -x "$BIN" ] || { echo "error: $BIN not found (swift build -c release --product conveyor, or set CONVEYOR_BIN)" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/conveyor-cluster-bench.XXXXXX")
servers=()
workers=()
stop_all() {
  for pid in "${workers[@]}" "${servers[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${workers[@]}" "${servers[@]}"; do wait "$pid" 2>/dev/null; done
  workers=()
  servers=()
}
trap 'stop_all; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for i in $(seq 1 "$JOBS"); do printf '{"type":"noop","user":%d}\n' "$i"; done >"$dir/jobs.jsonl"

printf '| masters | jobs | seconds | jobs/s | redis CPU s per 1,000 jobs, per master |\n|---|---|---|---|---|\n'
for masters in $MASTERS; do
  ports=()
  for index in $(seq 1 "$masters"); do
    node="$dir/m$masters-$index"
    mkdir -p "$node"
    # A random port may be taken (other tests run servers on loopback): try another.
    for _ in $(seq 1 20); do
      port=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
      rm -f "$node/nodes.conf"
      redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$node/nodes.conf" \
        --save '' --appendonly no --dir "$node" --logfile "$node/redis.log" --daemonize no >/dev/null 2>&1 &
      pid=$!
      up=0
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        redis-cli -p "$port" ping >/dev/null 2>&1 && { up=1; break; }
        sleep 0.05
      done
      [ "$up" -eq 1 ] && break
      kill "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    done
    [ "$up" -eq 1 ] || { echo "error: could not start redis-server on a free loopback port" >&2; exit 1; }
    servers+=("$pid")
    ports+=("$port")
  done
  for index in $(seq 0 $((masters - 1))); do
    first=$((index * 16384 / masters))
    last=$(((index + 1) * 16384 / masters - 1))
    redis-cli -p "${ports[$index]}" cluster addslotsrange "$first" "$last" >/dev/null
    [ "$index" -gt 0 ] && redis-cli -p "${ports[0]}" cluster meet 127.0.0.1 "${ports[$index]}" >/dev/null
  done
  for _ in $(seq 1 200); do
    ok=1
    for port in "${ports[@]}"; do
      redis-cli -p "$port" cluster info | tr -d '\r' | grep -q '^cluster_state:ok' || ok=0
    done
    [ "$ok" -eq 1 ] && break
    sleep 0.1
  done
  seeds=$(printf '127.0.0.1:%s,' "${ports[@]}")
  url="redis+cluster://${seeds%,}"
  common=(--redis "$url" --namespace bench --partitions "$PARTITIONS" --partition-tags spread)
  "$BIN" schedule "${common[@]}" --from "$dir/jobs.jsonl" >/dev/null 2>&1 || { echo "error: schedule failed" >&2; exit 1; }

  before=()
  for pid in "${servers[@]}"; do before+=("$(cpu_ticks "$pid")"); done
  start=$(date +%s.%N)
  for _ in $(seq 1 "$WORKERS"); do
    "$BIN" worker "${common[@]}" --concurrency "$CONCURRENCY" --log-level error >/dev/null 2>&1 &
    workers+=($!)
  done
  while true; do
    counts=$("$BIN" jobs counts "${common[@]}" --json 2>/dev/null)
    if grep -q '"pending":0' <<<"$counts" && grep -q '"running":0' <<<"$counts"; then break; fi
    sleep 0.1
  done
  end=$(date +%s.%N)
  grep -q "\"finished\":$JOBS," <<<"$counts" || { echo "error: expected $JOBS finished jobs: $counts" >&2; exit 1; }
  per_master=()
  for index in "${!servers[@]}"; do
    used=$(($(cpu_ticks "${servers[$index]}") - before[index]))
    per_master+=("$(awk -v t="$used" -v hz="$ticks" -v n="$JOBS" 'BEGIN { printf "%.3f", t / hz / n * 1000 }')")
  done
  awk -v m="$masters" -v n="$JOBS" -v s="$start" -v e="$end" -v cpu="${per_master[*]}" \
    'BEGIN { printf "| %d | %d | %.2f | %.0f | %s |\n", m, n, e - s, n / (e - s), cpu }'
  stop_all
done
