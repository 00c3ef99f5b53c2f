--[[
  Recovers running jobs whose lease expired (their worker is presumed dead): each one is
  failed as if its worker had completed it with success = 0 and result
  {"error":"worker lost","workerId":"<w>"}, with the same follow-up as completeJobs: a
  retry if ar = 1, else the next cron run at the given cronNextDue.

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

      ARGV[1] now               ms since epoch
      ARGV[2] staleAfterMs      ms (replace rule of the follow-ups)
      ARGV[3] partitionCount    number of partitions (>= 1)
      ARGV[4] partitionIndex    this partition, 0 <= index < partitionCount
      ARGV[5] N                 number of candidates (>= 1)
      then 2 arguments per candidate, j (0-based) at ARGV[6 + 2*j ...]:
        +0  id           job id
        +1  cronNextDue  ms of the job's next cron run after now; "" = none

    Output:
      one entry per candidate, in input order: {outcome, newJobId}
        outcome   7 RECOVERED, 8 NOT_EXPIRED (lease still valid: renewed meanwhile), or
                  9 NOT_RUNNING (completed, cancelled or recovered meanwhile, or unknown)
        newJobId  integer id of the retry or next cron job; 0 when none was scheduled
      error "ERR conveyor: ..." when an argument is invalid (nothing is written then)
]]
local rcall = redis.call

local keys = {
  seq = KEYS[1], jobPrefix = KEYS[2], due = KEYS[3], pending = KEYS[4],
  running = KEYS[5], leases = KEYS[6], finished = KEYS[7], wake = KEYS[8],
}

--- @include "checkInt"
--- @include "toIntString"
--- @include "readJob"
--- @include "finishJob"
--- @include "scheduleFollowUp"
--- @include "wakeWorker"

local RECOVERED, NOT_EXPIRED, NOT_RUNNING = 7, 8, 9

local now = checkInt(ARGV[1], "now")
local staleAfterMs = checkInt(ARGV[2], "staleAfterMs")
local partitionCount = checkInt(ARGV[3], "partitionCount")
local partitionIndex = checkInt(ARGV[4], "partitionIndex")
local count = checkInt(ARGV[5], "N")
local fieldsPerJob = 2

if partitionCount < 1 or partitionIndex < 0 or partitionIndex >= partitionCount then
  error({err = "ERR conveyor: partitionIndex must be in 0 ..< partitionCount"})
end
if count < 1 or #ARGV ~= 5 + count * fieldsPerJob then
  error({err = "ERR conveyor: expected 5 + 2 * N arguments"})
end

local entries = {}
for j = 0, count - 1 do
  local base = 6 + j * fieldsPerJob
  entries[#entries + 1] = {
    id = toIntString(checkInt(ARGV[base], "id")),
    cronNextDue = checkInt(ARGV[base + 1], "cronNextDue", false) or nil,
  }
end

local ctx = {
  now = now, staleAfterMs = staleAfterMs,
  partitionCount = partitionCount, partitionIndex = partitionIndex,
}
local result, wake = {}, false
for i, entry in ipairs(entries) do
  local id = entry.id
  local lease = rcall("ZSCORE", keys.leases, id)
  local job = rcall("ZSCORE", keys.running, id) and readJob(keys.jobPrefix .. id)
  if not job or job.fi then
    result[i] = {NOT_RUNNING, 0}
  elseif lease and tonumber(lease) > now then
    result[i] = {NOT_EXPIRED, 0}
  else
    -- A running job without a lease could never be renewed or recovered otherwise.
    local lost = '{"error":"worker lost","workerId":' .. cjson.encode(job.w or "") .. '}'
    finishJob(keys, id, now, false, lost)
    local newId, wakeNeeded = scheduleFollowUp(keys, ctx, id, job, false, entry.cronNextDue)
    result[i] = {RECOVERED, newId and tonumber(newId) or 0}
    wake = wake or wakeNeeded
  end
end
if wake then
  wakeWorker(keys.wake)
end
return result
