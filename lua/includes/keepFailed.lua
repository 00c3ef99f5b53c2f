--[[
  Keeps a job that just failed (fi = now already written) for keep.ms instead of its
  removeDelay, which is for successful jobs: records `fr` = keep.ms and indexes it in
  `failed` (score = now). At most keep.max failed jobs are kept per partition: beyond
  that the oldest are released to the archiver at once (their `fr` shortened to end now,
  their finished score set to now). Entries older than keep.ms are dropped first: their
  jobs are archived or due to be.

  Returns the job's removeAt (ms). The caller writes it to `finished`.
]]
--- @include "toIntString"

local function keepFailed(keys, id, now, keep)
  rcall("HSET", keys.jobPrefix .. id, "fr", toIntString(keep.ms))
  rcall("ZREMRANGEBYSCORE", keys.failed, "-inf", "(" .. toIntString(now - keep.ms))
  rcall("ZADD", keys.failed, toIntString(now), id)
  local removeAt = now + keep.ms
  local excess = rcall("ZCARD", keys.failed) - keep.max
  if excess > 0 then
    local oldest = rcall("ZPOPMIN", keys.failed, excess)
    for i = 1, #oldest, 2 do
      local oldId = oldest[i]
      local oldKey = keys.jobPrefix .. oldId
      if oldId == id then
        -- A tie on the score: this job is the one to go.
        rcall("HSET", oldKey, "fr", "0")
        removeAt = now
      else
        local finishedAt = tonumber(rcall("HGET", oldKey, "fi"))
        -- Only a job still waiting in `finished` (not archived, not deleted) is released.
        if finishedAt and rcall("ZSCORE", keys.finished, oldId) then
          rcall("HSET", oldKey, "fr", toIntString(math.max(0, now - finishedAt)))
          rcall("ZADD", keys.finished, toIntString(now), oldId)
        end
      end
    end
  end
  return removeAt
end
