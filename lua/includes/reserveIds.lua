--[[
  Reserves `count` sequence numbers of one partition and returns the first. Job ids are
  seq * partitionCount + partitionIndex.

  The counter never falls below a floor that grows with Redis's clock: 1024 ids per ms
  for the whole namespace (1024 / partitionCount per partition), counted from
  2026-01-01T00:00:00Z. No Redis can hand out ids faster than that, so every id given
  out before a restart is below the floor after it, even when Redis restarts from data
  that lacks its last writes (appendfsync everysec, an older RDB) and `seq` rolls back.
  The assumption is that Redis's clock does not go back across the restart. Ids stay
  below 2^53 (exact in Lua, JSON and JavaScript) for about 270 years.

  seqKey: the partition's `seq` key; now: ms since epoch (Redis's clock).
]]
--- @include "toIntString"

local function reserveIds(seqKey, count, now, partitionCount)
  local perMs = math.max(1, math.floor(1024 / partitionCount))
  local floor = math.max(0, now - 1767225600000) * perMs
  local last = tonumber(rcall("GET", seqKey) or "0")
  if last < floor then last = floor end
  rcall("SET", seqKey, toIntString(last + count))
  return last + 1
end
