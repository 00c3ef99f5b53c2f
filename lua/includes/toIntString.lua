--[[
  Formats an integral number as plain decimal text: "1764380000000", never "1.76438e+12".
  Lua 5.1's tostring() switches to exponent notation above 1e14 and keeps 14 significant
  digits, so every computed id, time or score goes through this before it reaches Redis.
]]
local function toIntString(number)
  return string.format("%d", number)
end
