--[[
  The result stored on an interrupted job:
  {"error":"<reason>","interrupted":true,"interruptions":n[,"workerId":"<w>"]
   [,"gaveUp":true]}. `gaveUp` says that this was the ctx.maxInterruptions-th interruption
  in a row, so no re-run follows (lua/README.md, "Interrupted jobs").

  reason: "worker lost" or "shutdown"; workerId: text or nil.
]]
--- @include "toIntString"
--- @include "interruptionCount"

local function interruptedResult(job, reason, workerId, maxInterruptions)
  local count = interruptionCount(job)
  local text = '{"error":' .. cjson.encode(reason) .. ',"interrupted":true,"interruptions":' .. toIntString(count)
  if workerId then
    text = text .. ',"workerId":' .. cjson.encode(workerId)
  end
  if count >= maxInterruptions then
    text = text .. ',"gaveUp":true'
  end
  return text .. '}'
end
