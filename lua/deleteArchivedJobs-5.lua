#!lua flags=allow-oom
--[[
  Deletes jobs an archiver has written to its history log and made durable: the job
  hash, the `finished` entry, the claim and the `failed` entry (a failed job kept for
  inspection; a stale entry would count against maxFailed and release a kept failed job
  early, includes/keepFailed). Only jobs claimed by this archiver are touched, so an
  archiver can never delete a job another one holds.

    Input:
      KEYS[1] jobPrefix         prefix of job hashes, e.g. "conveyor:{p0}:job:" (not a key)
      KEYS[2] finished  ZSET    id -> removeAt ms
      KEYS[3] archiving HASH    id -> archiverId of the claim
      KEYS[4] failed    ZSET    id -> finished ms, the failed jobs kept (includes/keepFailed)
      KEYS[5] paused    STRING  set while the slot moves: every call answers TRYAGAIN (includes/checkPaused)

      ARGV[1] archiverId        the archiver that claimed the jobs
      ARGV[2...] id             job ids, 0 ..= 1000

    Output:
      {deletedId, ...}  integer ids whose claim belonged to archiverId; their hash, their
                        `finished` and `failed` entries and their claim are gone. Other ids
                        are skipped.
      error "ERR conveyor: ..." when an argument is invalid (nothing is written then)
]]
local rcall = redis.call
--- @include "checkPaused"
checkPaused(KEYS[5])

local jobPrefix = KEYS[1]
local finishedKey = KEYS[2]
local archivingKey = KEYS[3]
local failedKey = KEYS[4]

--- @include "checkInt"
--- @include "toIntString"

local archiverId = ARGV[1]
-- The ids are unpacked into single commands below: at most 1000 (Lua's C stack).
if archiverId == nil or archiverId == "" or #ARGV > 1001 then
  error({err = "ERR conveyor: deleteArchivedJobs needs an archiverId and at most 1000 ids"})
end
local ids = {}
for i = 2, #ARGV do
  ids[#ids + 1] = toIntString(checkInt(ARGV[i], "id"))
end

local deleted = {}
if #ids == 0 then
  return deleted
end
-- One read of the claims and one command of each kind for the whole batch.
local owners = rcall("HMGET", archivingKey, unpack(ids))
local mine, jobKeys = {}, {}
for i, id in ipairs(ids) do
  if owners[i] == archiverId then
    mine[#mine + 1] = id
    jobKeys[#jobKeys + 1] = jobPrefix .. id
    deleted[#deleted + 1] = tonumber(id)
  end
end
if #mine > 0 then
  rcall("DEL", unpack(jobKeys))
  rcall("ZREM", finishedKey, unpack(mine))
  rcall("HDEL", archivingKey, unpack(mine))
  rcall("ZREM", failedKey, unpack(mine))
end
return deleted
