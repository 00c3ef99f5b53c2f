--[[
  Appends `name`, `value` to an HSET argument list, splitting a value longer than 64 bytes
  into fields of 63 bytes: `name` holds bytes 1-63, `name2` bytes 64-126, `name3` ..., up
  to 96 parts.

  Why: Redis keeps a hash in the compact listpack encoding only while every field and value
  is at most `hash-max-listpack-value` bytes (default 64). One 100-byte payload would turn
  the whole job hash into a real hash table (~620 bytes instead of ~250). Parts are 63
  bytes, not 64, because a listpack string of up to 63 bytes has a 1-byte header (2 bytes
  from 64). Values longer than 96 * 63 bytes are stored whole (the hash is a hash table
  then anyway). Readers join the parts again by their number (readJobFields in Lua,
  WorkerJob(id:hashFields:) in Swift), whatever their size.
]]
local function appendChunked(args, name, value)
  local whole, size, maxParts = 64, 63, 96
  local length = #value
  if length <= whole or length > size * maxParts then
    args[#args + 1] = name
    args[#args + 1] = value
    return
  end
  local part = 1
  for offset = 1, length, size do
    args[#args + 1] = (part == 1) and name or (name .. part)
    args[#args + 1] = string.sub(value, offset, offset + size - 1)
    part = part + 1
  end
end
