--[[
  Cancels one job by id, if it has not started: it is finished with ok = 0 and
  r = {"cancelled":true,"reason":"<reason>"} (without "reason" when the reason is empty),
  and removed from due and pending. A cron job cancelled this way ends its chain.

    Input:
      KEYS[1] jobPrefix         prefix of job hashes, e.g. "conveyor:{p0}:job:" (not a key)
      KEYS[2] due       ZSET    id -> due ms
      KEYS[3] pending   HASH    "<type>:<userId>" -> id of the not-started job
      KEYS[4] running   ZSET    id -> started ms
      KEYS[5] leases    ZSET    id -> lease expiry ms
      KEYS[6] finished  ZSET    id -> removeAt ms
      KEYS[7] paused    STRING  set while the slot moves: every call answers TRYAGAIN (includes/checkPaused)

      ARGV[1] now               ms since epoch; "" = Redis's clock (TIME); tests only pass one
      ARGV[2] id                job id
      ARGV[3] reason            free text stored in the result; "" = none

    Output:
      3 CANCELLED, 4 NOT_FOUND (no such job, or already archived), 5 ALREADY_RUNNING,
      6 ALREADY_FINISHED (lua/README.md)
      error "ERR conveyor: ..." when an argument is invalid
]]
local rcall = redis.call
--- @include "checkPaused"
checkPaused(KEYS[7])

local keys = {
  jobPrefix = KEYS[1], due = KEYS[2], pending = KEYS[3],
  running = KEYS[4], leases = KEYS[5], finished = KEYS[6],
}

--- @include "checkInt"
--- @include "toIntString"
--- @include "finishJob"
--- @include "redisNow"

local CANCELLED, NOT_FOUND, ALREADY_RUNNING, ALREADY_FINISHED = 3, 4, 5, 6

local now = redisNow(ARGV[1])
local id = toIntString(checkInt(ARGV[2], "id"))
local reason = ARGV[3] or ""

local state = rcall("HMGET", keys.jobPrefix .. id, "t", "st", "fi")
if not state[1] then
  return NOT_FOUND
elseif state[3] then
  return ALREADY_FINISHED
elseif state[2] then
  return ALREADY_RUNNING
end
local result = '{"cancelled":true}'
if reason ~= "" then
  result = '{"cancelled":true,"reason":' .. cjson.encode(reason) .. '}'
end
finishJob(keys, id, now, false, result)
return CANCELLED
