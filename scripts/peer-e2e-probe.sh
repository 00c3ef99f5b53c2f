#!/usr/bin/env bash
# Redis and worker CPU per job of one end-to-end run of ../shared/peers's conveyor-peer, with
# Redis's per-command figures, for A/B comparisons of two builds (docs/benchmarks.md, issue 14).
#
#   scripts/peer-e2e-probe.sh BIN [N=200000] [PROCESSES=2]     # PORT=6401: a private redis-server; C=50 runners each
#
# Fills N jobs (`BIN fill N`), starts PROCESSES workers × C (50) runners, waits until the jobs'
# counter reaches N, then prints jobs/s, Redis CPU µs per job (INFO cpu), the workers' CPU µs
# per job (/proc), Redis's reads per job (INFO stats), and the top of INFO commandstats per job.
# FLUSHALLs the server on PORT: never point it at a server with data.
set -euo pipefail
BIN=$1; N=${2:-200000}; P=${3:-2}; PORT=${PORT:-6401}; C=${C:-50}
R="redis-cli -p $PORT"
cpu() { $R info cpu | tr -d '\r' | awk -F: '/^used_cpu_sys:|^used_cpu_user:/{s+=$2} END{print s}'; }
$R flushall >/dev/null
BENCH_REDIS_PORT=$PORT $BIN fill "$N" >/dev/null
$R config resetstat >/dev/null
c0=$(cpu); t0=$(date +%s.%N)
pids=()
for _ in $(seq "$P"); do
  $BIN worker --concurrency "$C" --log-level warning --redis "redis://127.0.0.1:$PORT/0" & pids+=($!)
done
while [ "$($R get bench:done)" != "$N" ]; do sleep 0.01; done
t1=$(date +%s.%N); c1=$(cpu)
workers=0
for p in "${pids[@]}"; do workers=$(echo "$workers + $(awk '{print ($14 + $15) / 100}' "/proc/$p/stat")" | bc -l); done
kill "${pids[@]}"; wait 2>/dev/null || true
printf 'jobs/s %.0f  redis µs/job %.2f  workers µs/job %.2f\n' \
  "$(echo "$N / ($t1 - $t0)" | bc -l)" "$(echo "($c1 - $c0) * 1000000 / $N" | bc -l)" "$(echo "$workers * 1000000 / $N" | bc -l)"
$R info stats | tr -d '\r' | awk -F: -v n="$N" '/^total_reads_processed|^total_writes_processed/{printf "%s per job %.3f\n", $1, $2 / n}'
$R info commandstats | tr -d '\r' | awk -F'[:,=]' -v n="$N" '/^cmdstat/{printf "%-28s calls/job %.3f  usec/job %.2f\n", $1, $3 / n, $5 / n}' | sort -k5 -nr | head -12
