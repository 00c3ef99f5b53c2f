--[[
  Indexes the running jobs that became stale since the last sweep, so the replace rule
  finds a pair's stale jobs with one HGET instead of a scan of every stale job.

  `stale` (HASH) holds "<type>:<userId>" -> space-separated ids of running jobs that
  started before `@swept` (ms), and "@swept" itself (no pair field is "@swept": every
  pair field has a colon). A sweep adds the jobs of `running` started in
  [@swept, now - staleAfterMs) and moves @swept up, so each job is looked at once in its
  life, however many schedules follow. The first sweep of a partition looks at every
  job started before the cutoff, once. A sweep that finds nothing writes nothing.

  Returns the cutoff: jobs that started before it are stale.
]]
--- @include "toIntString"

local function sweepStaleRunning(keys, now, staleAfterMs)
  local swept = tonumber(rcall("HGET", keys.stale, "@swept"))
  local cutoff = now - staleAfterMs
  if swept and cutoff <= swept then
    return swept
  end
  local ids = rcall("ZRANGEBYSCORE", keys.running, swept and toIntString(swept) or "-inf", "(" .. toIntString(cutoff))
  -- Nothing started in [@swept, cutoff): @swept stays, so the next sweep looks at that
  -- empty range again (O(log n)) instead of every call writing `stale`.
  if #ids == 0 then
    keys.swept = swept or false
    return cutoff
  end
  local added = {}
  for _, id in ipairs(ids) do
    local state = rcall("HMGET", keys.jobPrefix .. id, "t", "u", "fi")
    -- A hash without t or u (foreign) is no pair's job: skipped, never concatenated
    -- (this runs after the caller's first write, so it must not raise).
    if state[1] and state[2] and not state[3] then
      local pair = state[1] .. ":" .. state[2]
      added[pair] = (added[pair] or rcall("HGET", keys.stale, pair) or "") .. " " .. id
    end
  end
  local args = {"@swept", toIntString(cutoff)}
  for pair, list in pairs(added) do
    args[#args + 1] = pair
    args[#args + 1] = string.sub(list, 1, 1) == " " and string.sub(list, 2) or list
  end
  -- At most 2 + 2 * (jobs swept) arguments; unpack in slices (Lua's C stack).
  for from = 1, #args, 1000 do
    rcall("HSET", keys.stale, unpack(args, from, math.min(from + 999, #args)))
  end
  keys.swept = cutoff  -- finishJob's cache of @swept (see forgetStaleRunning)
  return cutoff
end
