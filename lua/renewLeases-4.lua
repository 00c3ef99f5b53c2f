#!lua flags=allow-oom
--[[
  Renews the leases of the jobs one worker is running: one call per worker per renewal
  tick, with all of its job ids. A job is renewed only while it is still running and held
  by this worker; the others were lost (recovered after their lease expired, or cancelled
  as stale by the replace rule) and the worker should stop reporting them.

    Input:
      KEYS[1] jobPrefix         prefix of job hashes, e.g. "conveyor:{p0}:job:" (not a key)
      KEYS[2] running   ZSET    id -> started ms
      KEYS[3] leases    ZSET    id -> lease expiry ms
      KEYS[4] paused    STRING  set while the slot moves: every call answers TRYAGAIN (includes/checkPaused)

      ARGV[1] now               ms since epoch; "" = Redis's clock (TIME); tests only pass one
      ARGV[2] workerId          id of the renewing worker
      ARGV[3] leaseMs           new lease duration from now, ms
      ARGV[4...] id             ids of the jobs the worker holds (0 ..= 1000 of them)

  A lease that has already expired is renewed too, as long as the job is still running
  and held by this worker: after an outage longer than the lease, a live worker keeps its
  jobs unless recovery (which waits a grace period: recoverJobs) took them first.

    Output:
      {lostId, ...}  integer ids that were NOT renewed (empty list when all were)
      error "ERR conveyor: ..." when an argument is invalid (nothing is written then)
]]
local rcall = redis.call
--- @include "checkPaused"
checkPaused(KEYS[4])

local jobPrefix = KEYS[1]
local runningKey = KEYS[2]
local leasesKey = KEYS[3]

--- @include "checkInt"
--- @include "toIntString"
--- @include "redisNow"

local now = redisNow(ARGV[1])
local workerId = ARGV[2]
local leaseMs = checkInt(ARGV[3], "leaseMs")
if workerId == nil or workerId == "" or leaseMs < 1 or #ARGV > 1003 then
  error({err = "ERR conveyor: renewLeases needs a workerId, leaseMs >= 1 and at most 1000 ids"})
end
local ids = {}
for i = 4, #ARGV do
  ids[#ids + 1] = toIntString(checkInt(ARGV[i], "id"))
end

local leaseText = toIntString(now + leaseMs)
local lost = {}
for _, id in ipairs(ids) do
  if rcall("ZSCORE", runningKey, id) and rcall("HGET", jobPrefix .. id, "w") == workerId then
    rcall("ZADD", leasesKey, leaseText, id)
  else
    lost[#lost + 1] = tonumber(id)
  end
end
return lost
