#!lua flags=allow-oom
--[[
  Binds an archiver identity to the token of its history directory, once: the first
  binding stays (HSETNX); later calls only read it. One identity never writes to two
  directories. A script rather than HSETNX + HGET so that an archiver can start while
  Redis is at `maxmemory` (allow-oom): archiving is what frees memory.

    Input:
      KEYS[1] archivers  HASH   archiver identity -> directory token (one per namespace)

      ARGV[1] archiverId         the identity
      ARGV[2] token              the token of the directory this archiver writes to

    Output:
      the token the identity is bound to (ARGV[2] when this call bound it)
      error "ERR conveyor: ..." when an argument is empty
]]
local rcall = redis.call

local archiversKey = KEYS[1]
local archiverId = ARGV[1]
local token = ARGV[2]
if archiverId == nil or archiverId == "" or token == nil or token == "" then
  error({err = "ERR conveyor: bindArchiver needs an archiverId and a token"})
end

rcall("HSETNX", archiversKey, archiverId, token)
return rcall("HGET", archiversKey, archiverId)
