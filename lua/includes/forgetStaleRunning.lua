--[[
  Drops a job that is finishing from the `stale` index (see sweepStaleRunning), if a sweep
  indexed it: only jobs that started before `@swept` can be there, so for every job that
  ran less than staleAfterMs this is one HGET of `@swept` (once per script call, cached
  in ctx) and nothing else.

  ctx: a table the caller keeps for the script call (ctx.swept caches `@swept`).
  startedAt: the job's `st` (ms, number).
]]
local function forgetStaleRunning(keys, ctx, pair, id, startedAt)
  if ctx.swept == nil then
    ctx.swept = tonumber(rcall("HGET", keys.stale, "@swept")) or false
  end
  if not ctx.swept or startedAt >= ctx.swept then
    return
  end
  local list = rcall("HGET", keys.stale, pair)
  if not list then
    return
  end
  local keep = {}
  for other in string.gmatch(list, "%d+") do
    if other ~= id then keep[#keep + 1] = other end
  end
  if #keep == 0 then
    rcall("HDEL", keys.stale, pair)
  else
    rcall("HSET", keys.stale, pair, table.concat(keep, " "))
  end
end
