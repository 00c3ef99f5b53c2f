--[[
  Claims up to maxCount due jobs (due <= now) for one worker, earliest due first.

  For each: removes it from due and from pending (only if that field still points at it),
  sets st = now and w = workerId, adds it to running (score now) and to leases (score
  now + leaseMs). Returns every claimed job's fields, so the worker needs no second round
  trip, and the earliest remaining due time, so it knows how long to block on `wake`.
  If due jobs remain after this batch, pushes one wake marker so that one more idle worker
  claims them (a chain: never wakes everyone).

    Input:
      KEYS[1] jobPrefix         prefix of job hashes, e.g. "conveyor:{p0}:job:" (not a key)
      KEYS[2] due       ZSET    id -> due ms
      KEYS[3] pending   HASH    "<type>:<userId>" -> id of the not-started job
      KEYS[4] running   ZSET    id -> started ms
      KEYS[5] leases    ZSET    id -> lease expiry ms
      KEYS[6] wake      LIST    wake-up markers

      ARGV[1] now               ms since epoch
      ARGV[2] workerId          id of the claiming worker (keep it <= 64 bytes)
      ARGV[3] maxCount          most jobs to claim (>= 1)
      ARGV[4] leaseMs           lease duration, ms

    Output:
      {nextDue, id1, fields1, id2, fields2, ...}
        nextDue  integer: the earliest due time still in `due` after the claim, ms;
                 -1 when `due` is empty (it may be <= now: more work is waiting)
        idN      integer id of a claimed job
        fieldsN  the job's HGETALL reply before the claim: {field1, value1, ...}, short
                 names (lua/README.md), long `d`/`r` still in parts (the client joins
                 them). The claim's st (= now) and w (= workerId) are not in it: the
                 caller sent both. Handed over as Redis built it, because copying it
                 into a new Lua table per job was most of this script's cost.
      error "ERR conveyor: ..." when an argument is invalid
]]
local rcall = redis.call

local jobPrefix = KEYS[1]
local dueKey = KEYS[2]
local pendingKey = KEYS[3]
local runningKey = KEYS[4]
local leasesKey = KEYS[5]
local wakeKey = KEYS[6]

--- @include "checkInt"
--- @include "toIntString"
--- @include "wakeWorker"

local now = checkInt(ARGV[1], "now")
local workerId = ARGV[2]
local maxCount = checkInt(ARGV[3], "maxCount")
local leaseMs = checkInt(ARGV[4], "leaseMs")
if workerId == nil or workerId == "" or maxCount < 1 or leaseMs < 1 then
  error({err = "ERR conveyor: claimJobs needs a workerId, maxCount >= 1 and leaseMs >= 1"})
end

local nowText = toIntString(now)
local leaseText = toIntString(now + leaseMs)
local result = {-1}
local ids = rcall("ZRANGEBYSCORE", dueKey, "-inf", nowText, "LIMIT", 0, maxCount)
if #ids > 0 then
  -- Batch-wide commands once, per-job work kept to read + mark.
  -- The ids are ranks 0 .. #ids - 1 of `due`: removed by rank from the head
  -- of the skiplist, O(log N + k), instead of one search per id.
  rcall("ZREMRANGEBYRANK", dueKey, 0, #ids - 1)
  local runningArgs, leaseArgs, pairKeys, pairIds = {}, {}, {}, {}
  for _, id in ipairs(ids) do
    local jobKey = jobPrefix .. id
    local job = rcall("HGETALL", jobKey)
    -- insertJob writes t and u first, so they are found without a scan.
    local jobType, userId
    if job[1] == "t" and job[3] == "u" then
      jobType, userId = job[2], job[4]
    else
      for i = 1, #job, 2 do
        if job[i] == "t" then jobType = job[i + 1] elseif job[i] == "u" then userId = job[i + 1] end
      end
    end
    if jobType then
      pairKeys[#pairKeys + 1] = jobType .. ":" .. userId
      pairIds[#pairIds + 1] = id
      rcall("HSET", jobKey, "st", nowText, "w", workerId)
      runningArgs[#runningArgs + 1] = nowText
      runningArgs[#runningArgs + 1] = id
      leaseArgs[#leaseArgs + 1] = leaseText
      leaseArgs[#leaseArgs + 1] = id
      result[#result + 1] = tonumber(id)
      result[#result + 1] = job
    end
  end
  if #runningArgs > 0 then
    rcall("ZADD", runningKey, unpack(runningArgs))
    rcall("ZADD", leasesKey, unpack(leaseArgs))
    -- Drop the pair-index entries that still point at a claimed job: one
    -- HMGET and one HDEL for the batch (the replace rule may already have
    -- pointed a pair at a newer job, which must stay).
    local current = rcall("HMGET", pendingKey, unpack(pairKeys))
    local stale = {}
    for i, pair in ipairs(pairKeys) do
      if current[i] == pairIds[i] then stale[#stale + 1] = pair end
    end
    if #stale > 0 then
      rcall("HDEL", pendingKey, unpack(stale))
    end
  end
end

local first = rcall("ZRANGE", dueKey, 0, 0, "WITHSCORES")
if first[2] then
  local nextDue = tonumber(first[2])
  result[1] = nextDue
  if nextDue <= now then
    wakeWorker(wakeKey)
  end
end
return result
