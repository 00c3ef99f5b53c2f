--[[
  Reads a job hash as a flat list {field1, value1, field2, value2, ...} in stored order,
  with the parts of `d` and `r` (`d2`, `d3`, ...: 63 bytes each, 64 in jobs stored before; see appendChunked) joined back
  into `d` and `r`. Returns an empty list when the job does not exist.
]]
local function readJobFields(jobKey)
  local raw = rcall("HGETALL", jobKey)
  local fields, parts, position = {}, {}, {}
  for i = 1, #raw, 2 do
    local field, value = raw[i], raw[i + 1]
    -- Only d2, d3, ... and r2, r3, ... are parts; test the cheap things first.
    local base, index
    if #field >= 2 then
      local first = string.byte(field, 1)
      if first == 100 or first == 114 then
        base, index = string.match(field, "^([dr])(%d+)$")
      end
    end
    if base then
      parts[base] = parts[base] or {}
      parts[base][tonumber(index)] = value
    else
      fields[#fields + 1] = field
      fields[#fields + 1] = value
      if field == "d" or field == "r" then
        position[field] = #fields
      end
    end
  end
  for base, list in pairs(parts) do
    local at = position[base]
    if at then
      local joined, index = {fields[at]}, 2
      while list[index] do
        joined[index] = list[index]
        index = index + 1
      end
      fields[at] = table.concat(joined)
    end
  end
  return fields
end
