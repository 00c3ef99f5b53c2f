#!lua flags=allow-oom
--[[
  Claims up to maxCount due jobs (due <= now) for one worker, earliest due first.

  For each: removes it from due and from pending (only if that field still points at it),
  sets st = now and w = workerId, adds it to running (score now) and to leases (score
  now + leaseMs). Returns every claimed job's fields, so the worker needs no second round
  trip, and the earliest remaining due time, so it knows how long to block on `wake`.
  If due jobs remain after this batch, pushes one wake marker so that one more idle worker
  claims them (a chain: never wakes everyone).

  Idempotent per claim token: the ids a claim took are kept in the worker's `claims` hash
  under the token. The same call sent again (the worker never got the reply: the
  connection dropped, or another command on it timed out) claims nothing new and returns
  the jobs of the first call that this worker still holds, with their leases renewed. So
  a lost reply never leaves jobs claimed by a worker that does not know it holds them.
  The worker names the tokens whose replies it has received in its next claim, which
  drops them, so the hash holds only the claims in flight; it expires 2 × leaseMs after
  the worker's last claim (a worker that died leaves nothing behind).

    Input:
      KEYS[1] jobPrefix         prefix of job hashes, e.g. "conveyor:{p0}:job:" (not a key)
      KEYS[2] due       ZSET    id -> due ms
      KEYS[3] pending   HASH    "<type>:<userId>" -> id of the not-started job
      KEYS[4] running   ZSET    id -> started ms
      KEYS[5] leases    ZSET    id -> lease expiry ms
      KEYS[6] wake      LIST    wake-up markers
      KEYS[7] parked    HASH    id -> type, jobs released because no worker knew their type
      KEYS[8] claims    HASH    this worker's claims in flight: token -> space-separated ids
      KEYS[9] finished  ZSET    id -> removeAt ms (a due job whose hash lacks t or u goes here)
      KEYS[10] paused   STRING  set while the slot moves: every call answers TRYAGAIN (includes/checkPaused)

      ARGV[1] now               ms since epoch; "" = Redis's clock (TIME); tests only pass one
      ARGV[2] workerId          id of the claiming worker (keep it <= 64 bytes)
      ARGV[3] maxCount          most jobs to claim, 1 ..= 1000
      ARGV[4] leaseMs           lease duration, ms (>= 1)
      ARGV[5] token             this claim's token, unique per worker (non-empty)
      ARGV[6...] acknowledged   tokens of earlier claims whose replies the worker received
                                (0 ..= 100): dropped from `claims`

    Output:
      {nextDue, now, id1, fields1, id2, fields2, ...}
        nextDue  integer: the earliest due time still in `due` after the claim, ms;
                 -1 when `due` is empty (it may be <= now: more work is waiting)
        now      integer: the time of the claim (the jobs' st), ms
        idN      integer id of a claimed job
        fieldsN  the job's HGETALL reply: {field1, value1, ...}, short names
                 (lua/README.md), long `d`/`r` still in parts (the client joins them).
                 On a first call it is the hash before the claim (st and w not in it:
                 the caller knows both); on a replay it is the hash as stored. Handed
                 over as Redis built it: copying it into a Lua table per job was most of
                 this script's cost.
      error "ERR conveyor: ..." when an argument is invalid (nothing is written then)
]]
local rcall = redis.call
--- @include "checkPaused"
checkPaused(KEYS[10])

local jobPrefix = KEYS[1]
local dueKey = KEYS[2]
local pendingKey = KEYS[3]
local runningKey = KEYS[4]
local leasesKey = KEYS[5]
local wakeKey = KEYS[6]
local parkedKey = KEYS[7]
local claimsKey = KEYS[8]
local finishedKey = KEYS[9]

--- @include "checkInt"
--- @include "toIntString"
--- @include "redisNow"
--- @include "wakeWorker"
--- @include "finishUnreadable"

local now = redisNow(ARGV[1])
local workerId = ARGV[2]
local maxCount = checkInt(ARGV[3], "maxCount")
local leaseMs = checkInt(ARGV[4], "leaseMs")
local token = ARGV[5]
-- maxCount bounds every list below (unpack is limited by Lua's C stack).
if workerId == nil or workerId == "" or maxCount < 1 or maxCount > 1000 or leaseMs < 1
    or token == nil or token == "" or #ARGV > 105 then
  error({err = "ERR conveyor: claimJobs needs a workerId, 1 <= maxCount <= 1000, leaseMs >= 1, a token and at most 100 acknowledged tokens"})
end

local nowText = toIntString(now)
local leaseText = toIntString(now + leaseMs)
local result = {-1, now}

local function pushNextDue()
  local first = rcall("ZRANGE", dueKey, 0, 0, "WITHSCORES")
  if first[2] then
    local nextDue = tonumber(first[2])
    result[1] = nextDue
    if nextDue <= now then
      wakeWorker(wakeKey)
    end
  end
end

if #ARGV > 5 then
  rcall("HDEL", claimsKey, unpack(ARGV, 6))
end

local record = rcall("HGET", claimsKey, token)
if record then
  -- A replay: hand back what the first call took and this worker still holds
  -- (recovery may have taken a job meanwhile; it is then not returned).
  for id in string.gmatch(record, "%d+") do
    local jobKey = jobPrefix .. id
    if rcall("ZSCORE", runningKey, id) and rcall("HGET", jobKey, "w") == workerId
        and rcall("HEXISTS", jobKey, "fi") == 0 then
      rcall("ZADD", leasesKey, leaseText, id)
      result[#result + 1] = tonumber(id)
      result[#result + 1] = rcall("HGETALL", jobKey)
    end
  end
  pushNextDue()
  return result
end

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
    if not jobType or not userId then
      -- Not a job this script wrote: finished as unreadable for the archiver, not lost.
      finishUnreadable({jobPrefix = jobPrefix, running = runningKey, leases = leasesKey, finished = finishedKey}, id, now)
    else
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
  if #pairIds > 0 then
    -- At most 2 × 1000 values per unpack (maxCount is bounded above).
    rcall("ZADD", runningKey, unpack(runningArgs))
    rcall("ZADD", leasesKey, unpack(leaseArgs))
    rcall("HSET", claimsKey, token, table.concat(pairIds, " "))
    rcall("PEXPIRE", claimsKey, 2 * leaseMs)
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
    if rcall("HLEN", parkedKey) > 0 then
      rcall("HDEL", parkedKey, unpack(pairIds))
    end
  end
end

pushNextDue()
return result
