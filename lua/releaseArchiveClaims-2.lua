#!lua flags=allow-oom
--[[
  Releases every claim an archiver holds in one partition, so that other archivers take
  those jobs. For an operator whose archiver and its history directory are gone for
  good: if the lost log already held some of these jobs, they are archived a second time
  (in another log). Never run it for an archiver that is alive or whose directory exists:
  start an archiver on that directory instead, which finishes the batch exactly once.

    Input:
      KEYS[1] archiving HASH    id -> archiverId of the claim
      KEYS[2] paused    STRING  set while the slot moves: every call answers TRYAGAIN (includes/checkPaused)

      ARGV[1] archiverId        the archiver whose claims are released

    Output:
      the number of claims released
      error "ERR conveyor: ..." when archiverId is empty
]]
local rcall = redis.call
--- @include "checkPaused"
checkPaused(KEYS[2])

local archivingKey = KEYS[1]

local archiverId = ARGV[1]
if archiverId == nil or archiverId == "" then
  error({err = "ERR conveyor: archiverId must not be empty"})
end

local claims = rcall("HGETALL", archivingKey)
local released = {}
for i = 1, #claims, 2 do
  if claims[i + 1] == archiverId then
    released[#released + 1] = claims[i]
  end
end
for _, id in ipairs(released) do
  rcall("HDEL", archivingKey, id)
end
return #released
