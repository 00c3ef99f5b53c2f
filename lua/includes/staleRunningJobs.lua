--[[
  The running jobs of one pair that started more than staleAfterMs before now and have
  not finished: by the replace rule they count as pending (their worker is presumed dead).
  O(jobs of the pair in the index): the index (`stale`, see sweepStaleRunning) is swept
  once per script call (ctx.staleCutoff). Ids that are no longer running are dropped from
  the index on the way.

  Returns a list of job ids (strings), possibly empty: when empty, the call's shared
  ctx.noIds (set here), which the caller must not change.
]]
--- @include "sweepStaleRunning"

local function staleRunningJobs(keys, ctx, pair)
  if not ctx.staleCutoff then
    ctx.staleCutoff = sweepStaleRunning(keys, ctx.now, ctx.staleAfterMs)
    -- Only "@swept" (or no hash): no pair has stale jobs, and none can gain one during
    -- this call (the index is only added to by the sweep above), so no HGET per job.
    -- Every pair field is written together with "@swept", which is never deleted.
    ctx.noStaleJobs = rcall("HLEN", keys.stale) <= 1
    ctx.noIds = {}
  end
  if ctx.noStaleJobs then
    return ctx.noIds
  end
  local list = rcall("HGET", keys.stale, pair)
  if not list then
    return ctx.noIds
  end
  local stale, keep, seen = {}, {}, 0
  for id in string.gmatch(list, "%d+") do
    seen = seen + 1
    local state = rcall("HMGET", keys.jobPrefix .. id, "st", "fi")
    if state[1] and not state[2] then
      keep[#keep + 1] = id
      if tonumber(state[1]) < ctx.staleCutoff then
        stale[#stale + 1] = id
      end
    end
  end
  if #keep == 0 then
    rcall("HDEL", keys.stale, pair)
  elseif #keep < seen then
    rcall("HSET", keys.stale, pair, table.concat(keep, " "))
  end
  return stale
end
