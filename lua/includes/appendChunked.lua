--[[
  Appends `name`, `value` to an HSET argument list, splitting a long value into fields of
  64 bytes: `name` holds bytes 1-64, `name2` bytes 65-128, `name3` ..., up to 96 parts.

  Why: Redis keeps a hash in the compact listpack encoding only while every field and value
  is at most `hash-max-listpack-value` bytes (default 64). One 100-byte payload would turn
  the whole job hash into a real hash table (~620 bytes instead of ~250). Values longer
  than 96 * 64 bytes are stored whole (the hash is a hash table then anyway).
  readJobFields joins the parts again; no caller ever sees them.
]]
local function appendChunked(args, name, value)
  local size, maxParts = 64, 96
  local length = #value
  if length <= size or length > size * maxParts then
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
