--[[
  Finishes a job that exists and is not finished yet: sets `fi` = now, `ok`, `r` (when the
  result is not empty), removes it from due, pending (only if that field still points at
  it), running and leases, and adds it to finished with score removeAt = now + rmd.

  keys: the script's key table (jobPrefix, due, pending, running, leases, finished).
  id: job id (string); now: ms (number); success: boolean; result: JSON text or nil/"".
  Returns true when it finished the job; false when the job does not exist or was already
  finished (nothing is written then).
]]
--- @include "toIntString"
--- @include "appendChunked"

local function finishJob(keys, id, now, success, result)
  local jobKey = keys.jobPrefix .. id
  local state = rcall("HMGET", jobKey, "t", "u", "fi", "rmd")
  local jobType, userId, finishedAt, removeDelay = state[1], state[2], state[3], state[4]
  if not jobType or finishedAt then
    return false
  end
  local args = {"fi", toIntString(now), "ok", success and "1" or "0"}
  if result and result ~= "" then
    appendChunked(args, "r", result)
  end
  rcall("HSET", jobKey, unpack(args))
  local pair = jobType .. ":" .. userId
  if rcall("HGET", keys.pending, pair) == id then
    rcall("HDEL", keys.pending, pair)
  end
  rcall("ZREM", keys.due, id)
  rcall("ZREM", keys.running, id)
  rcall("ZREM", keys.leases, id)
  rcall("ZADD", keys.finished, toIntString(now + (tonumber(removeDelay) or 0)), id)
  return true
end
