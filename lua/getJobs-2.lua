--[[
  Reads jobs by id, for inspection and for the archiver. Use this instead of HGETALL:
  long `d` and `r` values are stored in 64-byte parts (includes/appendChunked), which
  this joins again. Writes nothing.

    Input:
      KEYS[1] jobPrefix         prefix of job hashes, e.g. "conveyor:{p0}:job:" (not a key)
      KEYS[2] paused    STRING  set while the slot moves: every call answers TRYAGAIN (includes/checkPaused)

      ARGV[1...] id             job ids (zero or more)

    Output:
      one entry per id, in input order:
        {id, field1, value1, field2, value2, ...}  id as an integer, then the stored fields
                                                   (short names, lua/README.md)
        {}                                          when the job does not exist
      error "ERR conveyor: ..." when an id is not an integer
]]
local rcall = redis.call
--- @include "checkPaused"
checkPaused(KEYS[2])

local jobPrefix = KEYS[1]

--- @include "checkInt"
--- @include "toIntString"
--- @include "readJobFields"

local ids = {}
for i = 1, #ARGV do
  ids[i] = toIntString(checkInt(ARGV[i], "id"))
end

local result = {}
for i, id in ipairs(ids) do
  local job = readJobFields(jobPrefix .. id)
  if #job > 0 then
    table.insert(job, 1, tonumber(id))
  end
  result[i] = job
end
return result
