--[[
  Finishes a job that exists and is not finished yet: sets `fi` = now, `ok`, `r` (when the
  result is not empty), removes it from due, pending (only if that field still points at
  it), running and leases, and adds it to finished with score removeAt.

  removeAt is now + rmd, except for a failure given `keep` (see keepFailed): then the job
  stays keep.ms (`fr` records it) and is indexed in `failed`, so it can be inspected and
  run again before it is archived. Cancelled jobs take rmd: their record is complete and
  nothing about them is left to retry.

  keys: the script's key table (jobPrefix, due, pending, running, leases, finished; failed
        when keep is given; stale when the job may have started, see forgetStaleRunning).
  id: job id (string); now: ms (number); success: boolean; result: JSON text or nil/"";
  keep: nil, or {ms = retention of failed jobs, max = most failed jobs kept}.
  Returns true when it finished the job; false when the job does not exist or was already
  finished (nothing is written then).
]]
--- @include "toIntString"
--- @include "appendChunked"
--- @include "keepFailed"
--- @include "forgetStaleRunning"

local function finishJob(keys, id, now, success, result, keep)
  local jobKey = keys.jobPrefix .. id
  local state = rcall("HMGET", jobKey, "t", "u", "fi", "rmd", "st")
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
  if state[5] and keys.stale then
    -- The key table lives for one script call: it also caches `@swept`.
    forgetStaleRunning(keys, keys, pair, id, tonumber(state[5]))
  end
  rcall("ZREM", keys.due, id)
  rcall("ZREM", keys.running, id)
  rcall("ZREM", keys.leases, id)
  local removeAt = now + (tonumber(removeDelay) or 0)
  if keep and not success then
    removeAt = keepFailed(keys, id, now, keep)
  end
  rcall("ZADD", keys.finished, toIntString(removeAt), id)
  return true
end
