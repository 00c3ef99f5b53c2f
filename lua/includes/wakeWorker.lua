--[[
  Wakes one idle worker: pushes one marker onto the `wake` list, on which idle workers
  block with BLPOP (timeout = time until the next due job). One marker wakes one worker;
  the list is trimmed to 1000 markers so it cannot grow without bound while no worker
  listens (a worker that pops a stale marker only makes one empty claim). LTRIM runs only
  when LPUSH's reply says the list grew past 1000: one command per wake in the usual case.
]]
local function wakeWorker(wakeKey)
  if rcall("LPUSH", wakeKey, "1") > 1000 then
    rcall("LTRIM", wakeKey, 0, 999)
  end
end
