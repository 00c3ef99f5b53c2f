--[[
  Wakes one idle worker: pushes one marker onto the `wake` list, on which idle workers
  block with BLPOP (timeout = time until the next due job). One marker wakes one worker;
  the list is trimmed to 1000 markers so it cannot grow without bound while no worker
  listens (a worker that pops a stale marker only makes one empty claim).
]]
local function wakeWorker(wakeKey)
  rcall("LPUSH", wakeKey, "1")
  rcall("LTRIM", wakeKey, 0, 999)
end
