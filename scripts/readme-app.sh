#!/usr/bin/env bash
# Keeps the README true: copies its "Using it in your app" files (each ```swift block
# whose first line is `// swift-tools-version` or `// Sources/myapp/...`) into a
# package `myapp` beside a folder `conveyor` that is this checkout, exactly as the
# README lays them out, builds it with the README's Package.swift, runs it against
# $REDIS_URL (scripts/with-redis.sh provides one) and checks that its jobs ran: one
# now, one later with an auto-retry, a seconds cron job, the embedded CLI, and a
# worker run as a ServiceGroup until SIGTERM.
#
# The package lives in .build/readme-app (README_APP_DIR to move it), so later runs
# rebuild only what changed; the first one builds Conveyor and its dependencies
# again in the app's own .build (a few minutes on 2 cores).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
swift=${SWIFT:-swift}
work=${README_APP_DIR:-$root/.build/readme-app}
app=$work/myapp
: "${REDIS_URL:?run me under scripts/with-redis.sh (it exports REDIS_URL)}"

fail() { echo "readme-app: FAILED: $*" >&2; exit 1; }
serve=""
trap '[ -z "$serve" ] || kill "$serve" 2>/dev/null' EXIT

# The dependency is `.package(path: "../conveyor")`, whose identity is "conveyor".
mkdir -p "$work"
ln -sfn "$root" "$work/conveyor"
rm -rf "$app/Package.swift" "$app/Sources"
mkdir -p "$app/Sources/myapp/Jobs"
awk -v app="$app" '
  /^```swift[[:space:]]*$/ { inside = 1; first = 1; out = ""; next }
  inside && /^```[[:space:]]*$/ { if (out != "") close(out); inside = 0; next }
  inside && first {
    first = 0
    if ($0 ~ /^\/\/ swift-tools-version/) out = app "/Package.swift"
    else if ($0 ~ /^\/\/ Sources\/myapp\/(Jobs\/)?[A-Za-z0-9]+\.swift$/) out = app "/" substr($0, 4)
  }
  inside && out != "" { print > out }
' "$root/README.md"
for file in Package.swift Sources/myapp/main.swift Sources/myapp/AppContext.swift Sources/myapp/Example.swift \
  Sources/myapp/Jobs/SendGreeting.swift Sources/myapp/Jobs/Tick.swift; do
  [ -s "$app/$file" ] || fail "README.md has no \`$file\` block"
done

started=$(date +%s)
if ! "$swift" build --package-path "$app" >"$work/build.log" 2>&1; then
  grep -E "error:" "$work/build.log" | head -20 >&2
  fail "the README app does not build (log: $work/build.log)"
fi
if grep -q "prohibited flag" "$work/build.log"; then fail "the build printed a prohibited-flag warning"; fi
echo "readme-app: built in $(( $(date +%s) - started )) s"
bin=$("$swift" build --package-path "$app" --show-bin-path)/myapp

# Runs the app; sets $out (stdout and stderr) and $status.
run() {
  set +e
  out=$("$bin" "$@" 2>&1)
  status=$?
  set -e
}
expect() { grep -qE -- "$1" <<<"$out" || fail "$2; output was:"$'\n'"$out"; }
field() { sed -nE "s/.*\"$1\":([^,}]*).*/\\1/p" <<<"$2" | head -1; }

# 1. The example: a job now, one in 3 s that fails once and is retried, a */2 s cron job.
run example
[ "$status" -eq 0 ] || fail "myapp example exited $status:"$'\n'"$out"
echo "$out" | sed 's/^/  example: /'
ada=$(grep -m1 '"Ada"' <<<"$out") || fail "no record of the job scheduled now"
grace=$(grep -m1 '"Grace"' <<<"$out") || fail "no record of the job scheduled in 3 s"
grep -q '"result":{"text":"Hello, Ada"}' <<<"$ada" && grep -q '"success":true' <<<"$ada" || fail "the job scheduled now did not succeed: $ada"
grep -q '"success":false' <<<"$grace" && grep -q '"autoRescheduleOnFailure":true' <<<"$grace" || fail "the job due in 3 s should have failed its first attempt: $grace"
ada_id=$(field id "$ada")
grace_id=$(field id "$grace")
expect "^retry: job [0-9]+, attempt 2, from job $grace_id\$" "no retry of job $grace_id"
retry_id=$(sed -nE 's/^retry: job ([0-9]+),.*/\1/p' <<<"$out")
expect '^cron job [0-9]+: ([2-9]|[1-9][0-9]+) runs finished$' "the */2 s cron job ran fewer than 2 times in 8 s"
expect '^stopping the chain: job [0-9]+ cancelled$' "the cron chain's pending run was not cancelled"
ticks=$(redis-cli -u "$REDIS_URL" GET myapp:ticks)
[ "${ticks:-0}" -ge 2 ] || fail "the cron job's INCR ran ${ticks:-0} times"

# 2. The embedded CLI, under the app's name.
run jobs show "$retry_id" --json
expect '"success": true' "the retry (job $retry_id) did not succeed"
expect '"text": "Hello, Grace"' "the retry's result is wrong"
run --help
expect 'USAGE: myapp ' "--help does not use the app's name"
! grep -q 'demo' <<<"$out" || fail "--help offers demo in an app without its job types"
run jobs cancel "$ada_id"
[ "$status" -eq 1 ] || fail "jobs cancel on a finished job exited $status, not 1"
[ "$out" = "error: job $ada_id has already finished" ] || fail "jobs cancel on a finished job printed: $out"
run schedule sendGreeting --user 5 --data '{"name":"Lin"}'
[ "$status" -eq 1 ] || fail "data without 'to' was accepted (exit $status): $out"
expect 'does not decode as its Input: missing key "to"' "the decoding error is not named"
run jobs list --user 5 --json
[ -z "$out" ] || fail "rejected data was written: $out"
run cron tick "0 9 * * *" --user 0 --tz Mars/Olympus
[ "$status" -eq 2 ] || fail "a bad --tz exited $status, not 2"
expect '--tz "Mars/Olympus": unknown time zone' "a bad --tz is not named as the problem"
data='{"to":"Lin","big":12345678901234567890,"neg":-0.0}'
run schedule sendGreeting --user 6 --data "$data" --json
[ "$status" -eq 0 ] || fail "schedule exited $status: $out"
lin_id=$(field id "$out")
run jobs list --user 6 --json
grep -qF "\"data\":$data," <<<"$out" || fail "the data was not stored as written: $out"

# 3. `myapp serve`: a ServiceGroup worker runs the job, and stops gracefully on SIGTERM.
"$bin" serve >"$work/serve.log" 2>&1 &
serve=$!
for _ in $(seq 1 100); do
  run jobs show "$lin_id" --json
  grep -q '"state": "finished"' <<<"$out" && break
  sleep 0.2
done
kill -TERM "$serve"
set +e; wait "$serve"; serve_status=$?; set -e
serve=""
grep -q '"text": "Hello, Lin"' <<<"$out" || fail "myapp serve did not run job $lin_id: $out"$'\n'"$(cat "$work/serve.log")"
[ "$serve_status" -eq 0 ] || fail "myapp serve exited $serve_status after SIGTERM"
echo "readme-app: the README's app built and ran as documented (jobs $ada_id, $grace_id -> $retry_id, cron, CLI, serve)"
