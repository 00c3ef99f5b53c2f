--[[
  Parses an integer argument, or raises "ERR conveyor: <what> must be an integer".
  Every script validates all of its arguments before its first write: a Lua error does not
  roll back the writes made before it.

  value: the argument text; empty text is allowed only when `default` is given. A missing
         argument (nil: the caller passed too few) is named as missing, not as the text 'nil'.
  Returns the number (exact below 2^53).
]]
local function checkInt(value, what, default)
  if (value == nil or value == "") and default ~= nil then
    return default
  end
  if value == nil then
    error({err = "ERR conveyor: " .. what .. " is missing (too few arguments)"})
  end
  local number = tonumber(value)
  if number == nil or number ~= math.floor(number) or number ~= number
      or math.abs(number) >= 9007199254740992 then
    error({err = "ERR conveyor: " .. what .. " must be an integer, got '" .. tostring(value) .. "'"})
  end
  return number
end
