--[[
  Deletes finished jobs whose removeAt has passed, after the archiver has copied them
  (archiver loop: ZRANGEBYSCORE finished -inf <now> LIMIT 0 <n>, getJobs, store the copies,
  then this). A crash between copying and deleting only makes the archiver copy the same
  jobs again, so the archive must accept a job id twice (upsert).

    Input:
      KEYS[1] jobPrefix         prefix of job hashes, e.g. "conveyor:{p0}:job:" (not a key)
      KEYS[2] finished  ZSET    id -> removeAt ms

      ARGV[1] now               ms since epoch
      ARGV[2...] id             job ids (zero or more)

    Output:
      {removedId, ...}  integer ids deleted; an id is skipped when it is not in `finished`
                        or its removeAt is after now
      error "ERR conveyor: ..." when an argument is invalid
]]
local rcall = redis.call

local jobPrefix = KEYS[1]
local finishedKey = KEYS[2]

--- @include "checkInt"
--- @include "toIntString"

local now = checkInt(ARGV[1], "now")
local ids = {}
for i = 2, #ARGV do
  ids[#ids + 1] = toIntString(checkInt(ARGV[i], "id"))
end

local removed = {}
for _, id in ipairs(ids) do
  local removeAt = rcall("ZSCORE", finishedKey, id)
  if removeAt and tonumber(removeAt) <= now then
    rcall("DEL", jobPrefix .. id)
    rcall("ZREM", finishedKey, id)
    removed[#removed + 1] = tonumber(id)
  end
end
return removed
