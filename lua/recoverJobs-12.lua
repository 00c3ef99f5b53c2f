#!lua flags=allow-oom
--[[
  Recovers running jobs whose lease expired (their worker is presumed dead): each one is
  finished as interrupted, with result
  {"error":"worker lost","interrupted":true,"interruptions":n,"workerId":"<w>"}, and
  continued like completeJobs continues an interrupted job: re-run at once whatever `ar`
  says, unless this was the maxInterruptions-th interruption in a row (then a retry if
  ar = 1 is not made either; the next cron run is).

  Two passes, a grace period apart: the first pass that finds a lease expired only marks
  the job in `suspects` (score = now); a later pass recovers it if the lease is still
  expired graceMs after the mark. A worker that is alive renews within the grace period,
  so an outage of Redis itself (frozen, restarted, unreachable) longer than the lease
  fails no live worker's job: after it every lease looks expired, but live workers renew
  before the second pass. A mark older than the job's lease expiry is stale (the lease was
  renewed after it) and is set anew.

  The caller picks the candidates and computes their next cron times first, because a
  script cannot evaluate cron expressions:
    1. ZRANGEBYSCORE leases -inf <now> LIMIT 0 <max>       -> candidate ids
    2. HMGET <jobPrefix><id> cr tz  for each               -> next cron time, if any
    3. this script with (id, cronNextDue) pairs.
  The script checks each candidate again (it may have been completed or renewed between
  1 and 3), so everything for one job happens in one atomic step: a crash of the caller
  between the steps loses nothing and never ends a cron chain.

    Input:
      KEYS[1] seq       STRING  id counter
      KEYS[2] jobPrefix         prefix of job hashes, e.g. "conveyor:{p0}:job:" (not a key)
      KEYS[3] due       ZSET    id -> due ms
      KEYS[4] pending   HASH    "<type>:<userId>" -> id of the not-started job
      KEYS[5] running   ZSET    id -> started ms
      KEYS[6] leases    ZSET    id -> lease expiry ms
      KEYS[7] finished  ZSET    id -> removeAt ms
      KEYS[8] wake      LIST    wake-up markers
      KEYS[9] suspects  ZSET    id -> when its lease was first seen expired, ms
      KEYS[10] failed   ZSET    id -> finished ms, the failed jobs kept (includes/keepFailed)
      KEYS[11] stale    HASH    "<type>:<userId>" -> ids of running jobs started before "@swept" (includes/sweepStaleRunning)
      KEYS[12] paused   STRING  set while the slot moves: every call answers TRYAGAIN (includes/checkPaused)

      ARGV[1] now               ms since epoch; "" = Redis's clock (TIME); tests only pass one
      ARGV[2] staleAfterMs      ms (replace rule of the follow-ups)
      ARGV[3] partitionCount    number of partitions (>= 1)
      ARGV[4] partitionIndex    this partition, 0 <= index < partitionCount
      ARGV[5] graceMs           how long a lease must stay expired after it is first seen
                                expired before the job is recovered, ms (>= 0)
      ARGV[6] maxInterruptions  consecutive interruptions after which a job is not re-run (>= 1)
      ARGV[7] failedKeepMs      how long a recovered (failed) job stays in Redis, ms (>= 0)
      ARGV[8] maxFailed         most failed jobs kept in this partition (>= 1)
      ARGV[9] N                 number of candidates, 1 ..= 1000
      then 2 arguments per candidate, j (0-based) at ARGV[10 + 2*j ...]:
        +0  id           job id
        +1  cronNextDue  ms of the job's next cron run after now; "" = none

    Output:
      one entry per candidate, in input order: {outcome, newJobId}
        outcome   7 RECOVERED, 8 NOT_EXPIRED (lease still valid: renewed meanwhile),
                  9 NOT_RUNNING (completed, cancelled or recovered meanwhile, or unknown),
                  or 10 IN_GRACE (expired, marked; recovered by a later pass unless renewed)
        newJobId  integer id of the re-run, retry or next cron job; 0 when none was scheduled
      error "ERR conveyor: ..." when an argument is invalid (nothing is written then)
]]
local rcall = redis.call
--- @include "checkPaused"
checkPaused(KEYS[12])

local keys = {
  seq = KEYS[1], jobPrefix = KEYS[2], due = KEYS[3], pending = KEYS[4],
  running = KEYS[5], leases = KEYS[6], finished = KEYS[7], wake = KEYS[8],
  suspects = KEYS[9], failed = KEYS[10], stale = KEYS[11],
}

--- @include "checkInt"
--- @include "toIntString"
--- @include "readJob"
--- @include "finishJob"
--- @include "scheduleFollowUp"
--- @include "interruptedResult"
--- @include "redisNow"
--- @include "wakeWorker"
--- @include "finishUnreadable"

local RECOVERED, NOT_EXPIRED, NOT_RUNNING, IN_GRACE = 7, 8, 9, 10

local now = redisNow(ARGV[1])
local staleAfterMs = checkInt(ARGV[2], "staleAfterMs")
local partitionCount = checkInt(ARGV[3], "partitionCount")
local partitionIndex = checkInt(ARGV[4], "partitionIndex")
local graceMs = checkInt(ARGV[5], "graceMs")
local maxInterruptions = checkInt(ARGV[6], "maxInterruptions")
local keep = {ms = checkInt(ARGV[7], "failedKeepMs"), max = checkInt(ARGV[8], "maxFailed")}
local count = checkInt(ARGV[9], "N")
local fieldsPerJob = 2
local firstJobArg = 10

if partitionCount < 1 or partitionIndex < 0 or partitionIndex >= partitionCount then
  error({err = "ERR conveyor: partitionIndex must be in 0 ..< partitionCount"})
end
if graceMs < 0 or maxInterruptions < 1 then
  error({err = "ERR conveyor: graceMs must be >= 0 and maxInterruptions >= 1"})
end
if keep.ms < 0 or keep.max < 1 then
  error({err = "ERR conveyor: failedKeepMs must be >= 0 and maxFailed >= 1"})
end
if count < 1 or count > 1000 or #ARGV ~= firstJobArg - 1 + count * fieldsPerJob then
  error({err = "ERR conveyor: expected 9 + 2 * N arguments, 1 <= N <= 1000"})
end

local entries = {}
for j = 0, count - 1 do
  local base = firstJobArg + j * fieldsPerJob
  entries[#entries + 1] = {
    id = toIntString(checkInt(ARGV[base], "id")),
    cronNextDue = checkInt(ARGV[base + 1], "cronNextDue", false) or nil,
  }
end

local ctx = {
  now = now, staleAfterMs = staleAfterMs,
  partitionCount = partitionCount, partitionIndex = partitionIndex,
  maxInterruptions = maxInterruptions,
}
-- Marks are dropped when their job is settled; one left by a job that ended
-- without passing through here (completed after its mark) goes after a while.
rcall("ZREMRANGEBYSCORE", keys.suspects, "-inf", "(" .. toIntString(now - 10 * graceMs - 600000))
local result, wake = {}, false
for i, entry in ipairs(entries) do
  local id = entry.id
  local lease = rcall("ZSCORE", keys.leases, id)
  local job = rcall("ZSCORE", keys.running, id) and readJob(keys.jobPrefix .. id)
  if not job or job.fi then
    result[i] = {NOT_RUNNING, 0}
    rcall("ZREM", keys.suspects, id)
  elseif not job.t or not job.u then
    -- Not a job the scripts wrote: no worker can hold it. Finished for the archiver.
    finishUnreadable(keys, id, now)
    rcall("ZREM", keys.suspects, id)
    result[i] = {RECOVERED, 0}
  elseif lease and tonumber(lease) > now then
    result[i] = {NOT_EXPIRED, 0}
    rcall("ZREM", keys.suspects, id)
  else
    local marked = tonumber(rcall("ZSCORE", keys.suspects, id))
    if not marked or (lease and marked < tonumber(lease)) then
      rcall("ZADD", keys.suspects, toIntString(now), id)
      marked = now
    end
    if now - marked < graceMs then
      result[i] = {IN_GRACE, 0}
    else
      -- (A running job without a lease could never be renewed or recovered otherwise.)
      rcall("ZREM", keys.suspects, id)
      local lost = interruptedResult(job, "worker lost", job.w or "", maxInterruptions)
      finishJob(keys, id, now, false, lost, keep)
      local newId, wakeNeeded = scheduleFollowUp(keys, ctx, id, job, "interrupted", entry.cronNextDue)
      result[i] = {RECOVERED, newId and tonumber(newId) or 0}
      wake = wake or wakeNeeded
    end
  end
end
if wake then
  wakeWorker(keys.wake)
end
return result
