--[[
  Finds the running jobs that started more than staleAfterMs before now and have not
  finished: by the replace rule they count as pending (their worker is presumed dead).
  Scans `running` once: ZRANGEBYSCORE running -inf (now - staleAfterMs).

  Returns a table "<type>:<userId>" -> list of job ids (strings).
]]
--- @include "toIntString"

local function staleRunningJobs(keys, now, staleAfterMs)
  local byPair = {}
  local ids = rcall("ZRANGEBYSCORE", keys.running, "-inf", "(" .. toIntString(now - staleAfterMs))
  for _, id in ipairs(ids) do
    local state = rcall("HMGET", keys.jobPrefix .. id, "t", "u", "fi")
    if state[1] and not state[3] then
      local pair = state[1] .. ":" .. state[2]
      local list = byPair[pair]
      if not list then
        list = {}
        byPair[pair] = list
      end
      list[#list + 1] = id
    end
  end
  return byPair
end
