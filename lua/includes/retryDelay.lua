--[[
  The delay before an automatic retry of failed job `id` (a table as readJob returns it):
  ard, or with `bx` (exponential backoff) min(bx, max(ard, 1000) * 2^(a - 1)) jittered
  down by up to half. The jitter comes from the microseconds of Redis's TIME: Lua's
  math.random repeats the same sequence in every script call; the id spreads the jobs
  that one call retries.
]]
local function retryDelay(job, id)
  local base = tonumber(job.ard) or 0
  local cap = tonumber(job.bx)
  if not cap then return base end
  local attempt = tonumber(job.a) or 1
  -- 2^(a-1) overflows nothing below the cap: stop doubling once past it.
  local delay = math.max(base, 1000)
  for _ = 2, attempt do
    if delay >= cap then break end
    delay = delay * 2
  end
  delay = math.min(cap, delay)
  local spread = (tonumber(rcall("TIME")[2]) + (tonumber(id) or 0) * 7919) % 1000
  return delay - math.floor(delay / 2 * spread / 1000)
end
