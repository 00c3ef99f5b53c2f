--[[
  Schedules N jobs in one call (single scheduling is N = 1).

  Each job first cancels every matching job (same type and userId, and not started, or
  started more than staleAfterMs before now and not finished): see includes/insertJob.
  Jobs of one call are inserted in order, so for one type/userId the last one wins and the
  earlier ones of the same call end cancelled. Wakes one idle worker if any new job is due
  at or before now or became the earliest due job.

    Input:
      KEYS[1] seq       STRING  id counter
      KEYS[2] jobPrefix         prefix of job hashes, e.g. "conveyor:{p0}:job:" (not a key)
      KEYS[3] due       ZSET    id -> due ms
      KEYS[4] pending   HASH    "<type>:<userId>" -> id of the not-started job
      KEYS[5] running   ZSET    id -> started ms
      KEYS[6] leases    ZSET    id -> lease expiry ms
      KEYS[7] finished  ZSET    id -> removeAt ms
      KEYS[8] wake      LIST    wake-up markers
      KEYS[9] stale     HASH    "<type>:<userId>" -> ids of running jobs started before "@swept" (includes/sweepStaleRunning)
      KEYS[10] paused   STRING  set while the slot moves: every call answers TRYAGAIN (includes/checkPaused)

      ARGV[1] now               ms since epoch; "" = Redis's clock (TIME); tests only pass one
      ARGV[2] staleAfterMs      ms; a job started longer ago than this and not finished counts as pending
      ARGV[3] partitionCount    number of partitions (>= 1)
      ARGV[4] partitionIndex    this partition, 0 <= index < partitionCount
      ARGV[5] N                 number of jobs, 1 ..= 1000
      ARGV[6] fieldsPerJob      13, or 4 when every job of the call takes the defaults of
                                +4 ..= +12 (only those four are sent: a bulk call of plain
                                jobs passes a third of the arguments)
      then fieldsPerJob arguments per job, job j (0-based) at ARGV[7 + fieldsPerJob*j ...];
      "" = absent:
        +0  type        job type name (required)
        +1  userId      decimal integer user id, 0 for system jobs (required)
        +2  data        JSON text; "" = null
        +3  due         ms since epoch, kept as given; "+<ms>" = that long after now; "" = now
        +4  cron        cron expression; "" = not a cron job
        +5  tz          cron time zone; "" = UTC
        +6  ar          autoRescheduleOnFailure: "1" = yes; "" or "0" = no
        +7  ard         autoRescheduleOnFailureDelay, ms; "" = 0
        +8  rmd         removeDelay, ms; "" = 0
        +9  rf          rescheduledFromJob id; "" = none
        +10 attempt     attempt number >= 1; "" = 1
        +11 am          most attempts in all when ar = 1 (>= 1); "" = no limit
        +12 bx          exponential retry backoff up to this many ms (>= 1); "" = a fixed
                        ard (includes/scheduleFollowUp)
      then, optionally, one more argument ARGV[7 + fieldsPerJob*N]:
          tc          trace context of the span that scheduled the call (text, at most
                      4096 bytes), stored as `tc` on every job of the call; "" or absent = none

    Output:
      {now, newId1, replaced1, newId2, replaced2, ...}: the script's now (ms), then two
      integers per job, in input order
        newId     the new job's id
        replaced  how many jobs it replaced (each finished with
                  {"cancelled":true,"replacedBy":newId}), for the `replaced` metric
      error "ERR conveyor: ..." when an argument is invalid (nothing is written then)
]]
local rcall = redis.call
--- @include "checkPaused"
checkPaused(KEYS[10])

local keys = {
  seq = KEYS[1], jobPrefix = KEYS[2], due = KEYS[3], pending = KEYS[4],
  running = KEYS[5], leases = KEYS[6], finished = KEYS[7], wake = KEYS[8],
  stale = KEYS[9],
}

--- @include "checkInt"
--- @include "toIntString"
--- @include "insertJob"
--- @include "wakeWorker"
--- @include "redisNow"
--- @include "reserveIds"

local now = redisNow(ARGV[1])
local staleAfterMs = checkInt(ARGV[2], "staleAfterMs")
local partitionCount = checkInt(ARGV[3], "partitionCount")
local partitionIndex = checkInt(ARGV[4], "partitionIndex")
local count = checkInt(ARGV[5], "N")
local fieldsPerJob = checkInt(ARGV[6], "fieldsPerJob")

if partitionCount < 1 or partitionIndex < 0 or partitionIndex >= partitionCount then
  error({err = "ERR conveyor: partitionIndex must be in 0 ..< partitionCount"})
end
if fieldsPerJob ~= 4 and fieldsPerJob ~= 13 then
  error({err = "ERR conveyor: fieldsPerJob must be 4 or 13"})
end
-- N is bounded: a call runs alone in Redis, so a huge one would stall every client.
if count < 1 or count > 1000 or (#ARGV ~= 6 + count * fieldsPerJob and #ARGV ~= 7 + count * fieldsPerJob) then
  error({err = "ERR conveyor: expected 6 + fieldsPerJob * N arguments (+ 1 trace context), 1 <= N <= 1000"})
end

local function optional(value)
  if value == "" then return nil end
  return value
end

-- "" = now; "+<ms>" = relative to Redis's clock (a producer's own clock may be off);
-- else absolute, kept as given.
local function dueTime(value)
  if string.sub(value, 1, 1) == "+" then
    local delay = checkInt(string.sub(value, 2), "due delay")
    if delay < 0 then
      error({err = "ERR conveyor: due delay must be >= 0"})
    end
    return now + delay
  end
  return checkInt(value, "due", now)
end

local traceContext = optional(ARGV[7 + count * fieldsPerJob] or "")
if traceContext and #traceContext > 4096 then
  error({err = "ERR conveyor: tc must be at most 4096 bytes"})
end

-- Arguments +4 ..= +12 of the job at ARGV[base], checked, into job (which holds
-- their defaults). An empty argument (the usual case) is taken as its default
-- without a parse or a function call.
local function readOptions(job, base)
  local cron, tz = ARGV[base + 4], ARGV[base + 5]
  local ar, ard, rmd, rf = ARGV[base + 6], ARGV[base + 7], ARGV[base + 8], ARGV[base + 9]
  local attempt, am, bx = ARGV[base + 10], ARGV[base + 11], ARGV[base + 12]
  if ar ~= "" and ar ~= "0" and ar ~= "1" then
    error({err = "ERR conveyor: ar must be 1, 0 or empty"})
  end
  if attempt == "" then
    attempt = 1
  else
    attempt = checkInt(attempt, "attempt")
    if attempt < 1 then
      error({err = "ERR conveyor: attempt must be >= 1"})
    end
  end
  ard = ard == "" and 0 or checkInt(ard, "ard")
  rmd = rmd == "" and 0 or checkInt(rmd, "rmd")
  if ard < 0 or rmd < 0 then
    error({err = "ERR conveyor: ard and rmd must be >= 0"})
  end
  am = am ~= "" and checkInt(am, "am") or nil
  bx = bx ~= "" and checkInt(bx, "bx") or nil
  if (am and am < 1) or (bx and bx < 1) then
    error({err = "ERR conveyor: am and bx must be >= 1"})
  end
  if rf == "" then rf = nil else rf = toIntString(checkInt(rf, "rf")) end
  job.cr = cron ~= "" and cron or nil
  job.tz = tz ~= "" and tz or nil
  job.ar, job.ard, job.rmd, job.rf, job.a, job.am, job.bx = ar == "1", ard, rmd, rf, attempt, am, bx
end

-- Validate every job before the first write: this loop runs once per job.
local jobs = {}
local find = string.find
for j = 1, count do
  local base = 7 + (j - 1) * fieldsPerJob
  local jobType, userId, data, due = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  if jobType == "" then
    error({err = "ERR conveyor: job " .. j .. " needs a type"})
  end
  -- Decimal and canonical, so "<type>:<userId>" is unambiguous (split at the last colon).
  -- Up to 15 digits without a leading zero is canonical and exact as it is.
  if userId ~= "0" and not (#userId <= 15 and find(userId, "^[1-9]%d*$")) then
    userId = toIntString(checkInt(userId, "userId"))
  end
  local job = {
    t = jobType, u = userId, d = data ~= "" and data or nil, due = due == "" and now or dueTime(due),
    ar = false, ard = 0, rmd = 0, a = 1, tc = traceContext,
  }
  if fieldsPerJob == 13 then readOptions(job, base) end
  jobs[j] = job
end

-- One reservation covers every id of the call; the `due` and `pending` writes
-- are one command each for the call (ctx.deferred); and the "did a new job
-- become the earliest?" check runs once at the end instead of once per job.
local ctx = {
  now = now, staleAfterMs = staleAfterMs,
  partitionCount = partitionCount, partitionIndex = partitionIndex,
  nextSeq = reserveIds(keys.seq, count, now, partitionCount),
  deferEarliestCheck = true,
  deferred = {due = {}, pending = {}, cancelled = {}},
}
-- The pairs' `pending` fields in one HMGET instead of one HGET per job.
if count > 1 then
  local pairs, pendingBefore = {}, {}
  for i, job in ipairs(jobs) do pairs[i] = job.t .. ":" .. job.u end
  local ids = rcall("HMGET", keys.pending, unpack(pairs))
  for i, pair in ipairs(pairs) do pendingBefore[pair] = ids[i] end
  ctx.pendingBefore = pendingBefore
end
local result, wake, inserted = {now}, false, {}
for i, job in ipairs(jobs) do
  local id, cancelled, wakeNeeded = insertJob(keys, ctx, job)
  result[2 * i] = tonumber(id)
  result[2 * i + 1] = #cancelled
  inserted[id] = true
  wake = wake or wakeNeeded
end
flushDeferredInserts(keys, ctx.deferred)
if not wake then
  local first = rcall("ZRANGE", keys.due, 0, 0)
  wake = first[1] ~= nil and inserted[first[1]] == true
end
if wake then
  wakeWorker(keys.wake)
end
return result
