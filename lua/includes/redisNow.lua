--[[
  "Now" for a script, in ms since the Unix epoch: Redis's own clock (TIME), so hosts with
  skewed clocks agree on leases, due-now and the one-hour rule. Redis 7 replicates a
  script's effects, not the script, so reading TIME before writing is safe.

  override: the script's `now` argument. "" (what production callers send) reads TIME; an
  integer is used as given. Only tests send one, to drive time (lua/README.md, "Time").
]]
--- @include "checkInt"

local function redisNow(override)
  if override == nil or override == "" then
    local time = rcall("TIME")
    return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  end
  return checkInt(override, "now")
end
