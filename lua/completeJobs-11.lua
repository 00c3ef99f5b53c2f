#!lua flags=allow-oom
--[[
  Completes a batch of jobs run by one worker, and schedules what follows each of them.

  For each (id, status, result, cronNextDue):
  - if the job is not in `running`, or its `w` is not this worker, the worker lost it
    (recovered after its lease expired, or cancelled as stale): outcome LEASE_LOST and
    nothing is written for it;
  - else it is finished (fi = now, ok, r, removed from running and leases, added to
    finished with removeAt = now + rmd; a failed or interrupted job is kept longer, see
    includes/keepFailed), then its follow-up is inserted with the replace
    rule (includes/scheduleFollowUp): a re-run if it was interrupted (the worker shut
    down before it ended), a retry if it failed and ar = 1 (due now + ard, attempt + 1),
    else the next cron run if cr is set and cronNextDue is given (attempt 1). All get
    rf = id.
  Wakes one idle worker if a follow-up is due at or before now or became the earliest.
  Counts the finished jobs per outcome in `<prefix>stats:<minute>` (built from jobPrefix,
  same hash tag; minute = now / 60000; expires after 65 min), for `conveyor stats`.

    Input:
      KEYS[1] seq       STRING  id counter
      KEYS[2] jobPrefix         prefix of job hashes, e.g. "conveyor:{p0}:job:" (not a key)
      KEYS[3] due       ZSET    id -> due ms
      KEYS[4] pending   HASH    "<type>:<userId>" -> id of the not-started job
      KEYS[5] running   ZSET    id -> started ms
      KEYS[6] leases    ZSET    id -> lease expiry ms
      KEYS[7] finished  ZSET    id -> removeAt ms
      KEYS[8] wake      LIST    wake-up markers
      KEYS[9] failed    ZSET    id -> finished ms, the failed jobs kept (includes/keepFailed)
      KEYS[10] stale    HASH    "<type>:<userId>" -> ids of running jobs started before "@swept" (includes/sweepStaleRunning)
      KEYS[11] paused   STRING  set while the slot moves: every call answers TRYAGAIN (includes/checkPaused)

      ARGV[1] now               ms since epoch; "" = Redis's clock (TIME); tests only pass one
      ARGV[2] staleAfterMs      ms (replace rule of the follow-ups)
      ARGV[3] partitionCount    number of partitions (>= 1)
      ARGV[4] partitionIndex    this partition, 0 <= index < partitionCount
      ARGV[5] workerId          id of the completing worker
      ARGV[6] maxInterruptions  consecutive interruptions after which a job is not re-run (>= 1)
      ARGV[7] failedKeepMs      how long a failed job stays in Redis, ms (>= 0)
      ARGV[8] maxFailed         most failed jobs kept in this partition (>= 1)
      ARGV[9] N                 number of jobs, 1 ..= 1000
      then 4 arguments per job, job j (0-based) at ARGV[10 + 4*j ...]:
        +0  id           job id
        +1  status       "1" = succeeded, "0" = failed, "i" = interrupted (shutdown)
        +2  result       JSON text: the run's return value, or the error; "" = null.
                         For "i": the reason ("shutdown"); the script writes the result
        +3  cronNextDue  ms of the next cron run after now; "" = none (ignored when the
                         job has no cron or is retried)

    Output:
      {outcome1, newJobId1, outcome2, newJobId2, ...}: two integers per job, in input order
        outcome   1 COMPLETED or 2 LEASE_LOST (lua/README.md)
        newJobId  integer id of the re-run, retry or next cron job; 0 when none was scheduled
      error "ERR conveyor: ..." when an argument is invalid (nothing is written then)
]]
local rcall = redis.call
--- @include "checkPaused"
checkPaused(KEYS[11])

local keys = {
  seq = KEYS[1], jobPrefix = KEYS[2], due = KEYS[3], pending = KEYS[4],
  running = KEYS[5], leases = KEYS[6], finished = KEYS[7], wake = KEYS[8],
  failed = KEYS[9], stale = KEYS[10],
}

--- @include "checkInt"
--- @include "toIntString"
--- @include "appendChunked"
--- @include "readJob"
--- @include "scheduleFollowUp"
--- @include "interruptedResult"
--- @include "redisNow"
--- @include "wakeWorker"
--- @include "keepFailed"
--- @include "forgetStaleRunning"

local COMPLETED, LEASE_LOST = 1, 2

local now = redisNow(ARGV[1])
local staleAfterMs = checkInt(ARGV[2], "staleAfterMs")
local partitionCount = checkInt(ARGV[3], "partitionCount")
local partitionIndex = checkInt(ARGV[4], "partitionIndex")
local workerId = ARGV[5]
local maxInterruptions = checkInt(ARGV[6], "maxInterruptions")
local keep = {ms = checkInt(ARGV[7], "failedKeepMs"), max = checkInt(ARGV[8], "maxFailed")}
local count = checkInt(ARGV[9], "N")
local fieldsPerJob = 4
local firstJobArg = 10

if partitionCount < 1 or partitionIndex < 0 or partitionIndex >= partitionCount then
  error({err = "ERR conveyor: partitionIndex must be in 0 ..< partitionCount"})
end
if workerId == nil or workerId == "" then
  error({err = "ERR conveyor: workerId must not be empty"})
end
if maxInterruptions < 1 then
  error({err = "ERR conveyor: maxInterruptions must be >= 1"})
end
if keep.ms < 0 or keep.max < 1 then
  error({err = "ERR conveyor: failedKeepMs must be >= 0 and maxFailed >= 1"})
end
-- N bounds every list unpacked below (Lua's C stack limits unpack).
if count < 1 or count > 1000 or #ARGV ~= firstJobArg - 1 + count * fieldsPerJob then
  error({err = "ERR conveyor: expected 9 + 4 * N arguments, 1 <= N <= 1000"})
end
-- The per-minute counters' key is built from jobPrefix, so it must end in "job:".
if string.sub(keys.jobPrefix, -4) ~= "job:" then
  error({err = "ERR conveyor: jobPrefix must end with job:"})
end

-- Validate every entry before the first write (no table per job: the
-- loops below read ARGV again).
for j = 0, count - 1 do
  local base = firstJobArg + j * fieldsPerJob
  checkInt(ARGV[base], "id")
  local status = ARGV[base + 1]
  if status ~= "1" and status ~= "0" and status ~= "i" then
    error({err = "ERR conveyor: status must be 1, 0 or i"})
  end
  checkInt(ARGV[base + 3], "cronNextDue", false)
end

local ctx = {
  now = now, staleAfterMs = staleAfterMs,
  partitionCount = partitionCount, partitionIndex = partitionIndex,
  maxInterruptions = maxInterruptions,
}
local OUTCOMES = {["1"] = "ok", ["0"] = "failed", i = "interrupted"}
local nowText = toIntString(now)

-- Phase 1: finish every job this worker still holds. One HMGET decides: the
-- job is ours and running iff w is this worker, st is set and fi is not (any
-- other end — recovery, a stale-job replace, archiving — sets fi or deletes
-- the hash). A claimed job is in neither due nor pending (claimJobs removed
-- it), so only running/leases/finished change, each once for the whole batch.
-- An id that is not in canonical form names no job this worker holds, so
-- the argument text is used as is.
local result, owned, finishedArgs, followUps = {}, {}, {}, {}
for j = 0, count - 1 do
  local base = firstJobArg + j * fieldsPerJob
  local id, outcome, resultText = ARGV[base], OUTCOMES[ARGV[base + 1]], ARGV[base + 2]
  local success = outcome == "ok"
  local jobKey = keys.jobPrefix .. id
  local state = rcall("HMGET", jobKey, "w", "st", "fi", "rmd", "ar", "cr", "ic", "t", "u")
  result[2 * j + 1] = LEASE_LOST
  result[2 * j + 2] = 0
  if state[1] == workerId and state[2] and not state[3] then
    if outcome == "interrupted" then
      resultText = interruptedResult({ic = state[7]}, resultText, nil, maxInterruptions)
    end
    if resultText ~= "" then
      local args = {"fi", nowText, "ok", success and "1" or "0"}
      appendChunked(args, "r", resultText)
      rcall("HSET", jobKey, unpack(args))
    else
      rcall("HSET", jobKey, "fi", nowText, "ok", success and "1" or "0")
    end
    if success then
      local removeDelay = tonumber(state[4])
      finishedArgs[#finishedArgs + 1] = removeDelay and toIntString(now + removeDelay) or nowText
    else
      finishedArgs[#finishedArgs + 1] = toIntString(keepFailed(keys, id, now, keep))
    end
    finishedArgs[#finishedArgs + 1] = id
    owned[#owned + 1] = id
    result[2 * j + 1] = COMPLETED
    if state[8] and state[9] then
      forgetStaleRunning(keys, ctx, state[8] .. ":" .. state[9], id, tonumber(state[2]))
    end
    -- Only a retry or a cron job needs the whole record, for its follow-up.
    local cronNextDue = ARGV[base + 3]
    if outcome == "interrupted" or (not success and state[5] == "1") or (state[6] ~= false and cronNextDue ~= "") then
      followUps[#followUps + 1] = j
    end
  end
end
if #owned > 0 then
  rcall("ZREM", keys.running, unpack(owned))
  rcall("ZREM", keys.leases, unpack(owned))
  rcall("ZADD", keys.finished, unpack(finishedArgs))
end

-- Per-minute counters of finished jobs by outcome (conveyor stats, the
-- dashboard's chart), in the same step as the state change: never one without the other.
if #owned > 0 then
  local tally = {ok = 0, failed = 0, interrupted = 0}
  for j = 0, count - 1 do
    if result[2 * j + 1] == COMPLETED then
      local outcome = OUTCOMES[ARGV[firstJobArg + j * fieldsPerJob + 1]]
      tally[outcome] = tally[outcome] + 1
    end
  end
  local statsKey = string.sub(keys.jobPrefix, 1, -5) .. "stats:" .. toIntString(math.floor(now / 60000))
  for _, outcome in ipairs({"ok", "failed", "interrupted"}) do
    if tally[outcome] > 0 then
      rcall("HINCRBY", statsKey, outcome, tally[outcome])
    end
  end
  rcall("EXPIRE", statsKey, 3900)
end

-- Phase 2: follow-ups, after every finished job left `running`, so the
-- replace rule's scan of stale running jobs never sees them.
local wake = false
for _, j in ipairs(followUps) do
  local base = firstJobArg + j * fieldsPerJob
  local id = ARGV[base]
  local job = readJob(keys.jobPrefix .. id)
  local cronNextDue = ARGV[base + 3]
  local newId, wakeNeeded = scheduleFollowUp(keys, ctx, id, job, OUTCOMES[ARGV[base + 1]],
    cronNextDue ~= "" and tonumber(cronNextDue) or nil)
  result[2 * j + 2] = newId and tonumber(newId) or 0
  wake = wake or wakeNeeded
end
if wake then
  wakeWorker(keys.wake)
end
return result
