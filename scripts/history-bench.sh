#!/usr/bin/env bash
# Measures history queries at production volume: generates a history in the
# archiver's own line format (conveyor-history-bench), times queries on the
# plain files (no index: every query reads), compresses + indexes them
# (`conveyor archiver --maintain`), and times the same queries again.
#   scripts/history-bench.sh [RECORDS=10000000] [DIR=/tmp/conveyor-history-bench]
# SKIP_GENERATE=1 reuses a history generated before (RECORDS must match it).
# Needs the Benchmarks package's release build of both executables (what `make bench-history` does):
#   swift build -c release --package-path Benchmarks --product conveyor
#   swift build -c release --package-path Benchmarks --product conveyor-history-bench
set -euo pipefail
records=${1:-10000000}
dir=${2:-/tmp/conveyor-history-bench}
bin=$("${SWIFT:-swift}" build -c release --package-path "$(dirname "$0")/../Benchmarks" --show-bin-path)
if [ "${SKIP_GENERATE:-0}" != 1 ]; then
  rm -rf "$dir"
  "$bin/conveyor-history-bench" "$dir" "$records"
fi
du -sb "$dir"

t() {  # label, then the command; prints seconds and the output's line count
  local label=$1; shift
  local start end lines
  start=$(date +%s.%N)
  lines=$("$@" | wc -l)
  end=$(date +%s.%N)
  printf '%-48s %8.3f s  %s lines\n' "$label" "$(echo "$end - $start" | bc)" "$lines"
}
old_id=5
recent_id=$((records - 3))
# 10 s of the oldest hour (finished 2026-11-01T00:10:00Z .. 00:10:10Z), and a query that must read every record.
queries() {
  t "history --id $recent_id (recent)" "$bin/conveyor" history --history-dir "$dir" --id "$recent_id"
  t "history --id $((records / 2)) (middle)" "$bin/conveyor" history --history-dir "$dir" --id "$((records / 2))"
  t "history --id $old_id (old)" "$bin/conveyor" history --history-dir "$dir" --id "$old_id"
  t "history --type rare --limit 20" "$bin/conveyor" history --history-dir "$dir" --type rare --limit 20
  t "history --since/--until (10 s, oldest hour)" "$bin/conveyor" history --history-dir "$dir" --since 2026-11-01T00:10:00Z --until 2026-11-01T00:10:10Z
  t "  same, --all --json (20,000 records)" "$bin/conveyor" history --history-dir "$dir" --since 2026-11-01T00:10:00Z --until 2026-11-01T00:10:10Z --all --json
  t "full scan: --user 1000001 (no match)" "$bin/conveyor" history --history-dir "$dir" --user 1000001
  t "full scan: --success false --all --json" "$bin/conveyor" history --history-dir "$dir" --success false --all --json
  t "export: --since/--until 1 h --all --json" "$bin/conveyor" history --history-dir "$dir" --since 2026-11-01T00:00:00Z --until 2026-11-01T01:00:00Z --all --json --oldest-first
}
echo "== plain files, no index"
queries
echo "== compressing + indexing"
start=$(date +%s.%N)
"$bin/conveyor" archiver --history-dir "$dir" --maintain
end=$(date +%s.%N)
echo "maintain: $(echo "$end - $start" | bc) s"
du -sb "$dir"
echo "== compressed files with indexes"
queries
