#!lua flags=allow-oom
--[[
  Gives claimed jobs back: each one this worker still holds goes back to `due`, not started,
  so that another worker takes it. Used for jobs of a type this worker does not know
  (rolling deploys, pools that run only some types): such a job must wait for a worker
  that knows it, not fail.

  For each id held by this worker (running, w = workerId, not finished):
  - rl (times released) += 1; due again at now + min(500 * 2^(rl - 1), 30000) ms, so a
    worker that keeps meeting a type it does not know claims it less and less often;
  - st and w are removed, it leaves running and leases, it is listed in `parked`;
  - if `pending` names another not-started job of the same type and user (scheduled
    while this one was claimed), the replace rule decides as if this job had stayed
    pending: it is cancelled, {"cancelled":true,"replacedBy":<that id>}; else it is
    put back in `pending`.
  Also drops up to 10 `parked` entries of jobs that are no longer waiting (cancelled
  while parked), so the index stays bounded without a write on every cancel.

    Input:
      KEYS[1] jobPrefix         prefix of job hashes, e.g. "conveyor:{p0}:job:" (not a key)
      KEYS[2] due       ZSET    id -> due ms
      KEYS[3] pending   HASH    "<type>:<userId>" -> id of the not-started job
      KEYS[4] running   ZSET    id -> started ms
      KEYS[5] leases    ZSET    id -> lease expiry ms
      KEYS[6] finished  ZSET    id -> removeAt ms
      KEYS[7] parked    HASH    id -> type, jobs released because no worker knew their type
      KEYS[8] paused    STRING  set while the slot moves: every call answers TRYAGAIN (includes/checkPaused)

      ARGV[1] now               ms since epoch; "" = Redis's clock (TIME); tests only pass one
      ARGV[2] workerId          id of the releasing worker
      ARGV[3...] id             ids of the jobs to release, 1 ..= 1000 of them

    Output:
      one entry per id, in input order: {outcome, value}
        11 RELEASED     value = the ms at which it is due again
        12 SUPERSEDED   value = id of the newer pending job that replaced it
        2  LEASE_LOST   value = 0: this worker does not hold the job; nothing written
      error "ERR conveyor: ..." when an argument is invalid (nothing is written then)
]]
local rcall = redis.call
--- @include "checkPaused"
checkPaused(KEYS[8])

local keys = {
  jobPrefix = KEYS[1], due = KEYS[2], pending = KEYS[3],
  running = KEYS[4], leases = KEYS[5], finished = KEYS[6], parked = KEYS[7],
}

--- @include "checkInt"
--- @include "toIntString"
--- @include "redisNow"
--- @include "finishJob"

local LEASE_LOST, RELEASED, SUPERSEDED = 2, 11, 12

local now = redisNow(ARGV[1])
local workerId = ARGV[2]
if workerId == nil or workerId == "" or #ARGV < 3 or #ARGV > 1002 then
  error({err = "ERR conveyor: releaseJobs needs a workerId and 1 to 1000 ids"})
end
local ids = {}
for i = 3, #ARGV do
  ids[#ids + 1] = toIntString(checkInt(ARGV[i], "id"))
end

local result = {}
for i, id in ipairs(ids) do
  local jobKey = keys.jobPrefix .. id
  local state = rcall("HMGET", jobKey, "t", "u", "w", "fi", "rl")
  if not state[1] or state[3] ~= workerId or state[4] or not rcall("ZSCORE", keys.running, id) then
    result[i] = {LEASE_LOST, 0}
  else
    local pair = state[1] .. ":" .. state[2]
    local releases = (tonumber(state[5]) or 0) + 1
    rcall("HDEL", jobKey, "st", "w")
    rcall("HSET", jobKey, "rl", toIntString(releases))
    rcall("ZREM", keys.running, id)
    rcall("ZREM", keys.leases, id)
    local newer = rcall("HGET", keys.pending, pair)
    if newer and newer ~= id and rcall("HEXISTS", keys.jobPrefix .. newer, "st") == 0 then
      finishJob(keys, id, now, false, '{"cancelled":true,"replacedBy":' .. newer .. '}')
      result[i] = {SUPERSEDED, tonumber(newer)}
    else
      local dueAt = now + math.min(500 * 2 ^ (releases - 1), 30000)
      rcall("ZADD", keys.due, toIntString(dueAt), id)
      rcall("HSET", keys.pending, pair, id)
      rcall("HSET", keys.parked, id, state[1])
      result[i] = {RELEASED, dueAt}
    end
  end
end

-- Cancelled while parked: not in due any more.
local sample = rcall("HRANDFIELD", keys.parked, 10)
for _, id in ipairs(sample) do
  if not rcall("ZSCORE", keys.due, id) then
    rcall("HDEL", keys.parked, id)
  end
end
return result
