--[[
  Deletes one finished job on an operator's request (the dashboard's delete action): its
  hash, its `finished` entry and its `failed` entry (a stale one would count against
  maxFailed, includes/keepFailed). The job then never reaches the history log. A job that has
  not finished, or that an archiver has claimed (it is being written to the history log),
  is left alone.

    Input:
      KEYS[1] jobPrefix         prefix of job hashes, e.g. "conveyor:{p0}:job:" (not a key)
      KEYS[2] finished  ZSET    id -> removeAt ms
      KEYS[3] archiving HASH    id -> archiverId of the claim
      KEYS[4] failed    ZSET    id -> finished ms, the failed jobs kept (includes/keepFailed)
      KEYS[5] paused    STRING  set while the slot moves: every call answers TRYAGAIN (includes/checkPaused)

      ARGV[1] id                job id

    Output:
      20 DELETED, 4 NOT_FOUND (no such job, or already archived), 21 NOT_FINISHED (pending
      or running), 22 BEING_ARCHIVED (lua/README.md)
      error "ERR conveyor: ..." when an argument is invalid
]]
local rcall = redis.call
--- @include "checkPaused"
checkPaused(KEYS[5])

local keys = {jobPrefix = KEYS[1], finished = KEYS[2], archiving = KEYS[3], failed = KEYS[4]}

--- @include "checkInt"
--- @include "toIntString"

local DELETED, NOT_FOUND, NOT_FINISHED, BEING_ARCHIVED = 20, 4, 21, 22

local id = toIntString(checkInt(ARGV[1], "id"))

local state = rcall("HMGET", keys.jobPrefix .. id, "t", "fi")
if not state[1] then
  return NOT_FOUND
elseif not state[2] then
  return NOT_FINISHED
elseif rcall("HEXISTS", keys.archiving, id) == 1 then
  return BEING_ARCHIVED
end
rcall("DEL", keys.jobPrefix .. id)
rcall("ZREM", keys.finished, id)
rcall("ZREM", keys.failed, id)
return DELETED
