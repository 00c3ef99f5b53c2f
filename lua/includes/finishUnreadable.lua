--[[
  Finishes a job whose hash cannot be run: it lacks `t` or `u` (written by a foreign or
  older program). It is not dropped: it gets fi = now, ok = 0 and
  r = {"error":"unreadable job hash"} and goes to `finished` with removeAt = now, so the
  archiver keeps it (raw, every field as a string) and nothing else waits on it.

  keys: jobPrefix, running, leases, finished (the caller has taken it out of due).
  Writes nothing when the hash does not exist (an id with no job behind it).
]]
--- @include "toIntString"

local function finishUnreadable(keys, id, now)
  local jobKey = keys.jobPrefix .. id
  if rcall("EXISTS", jobKey) == 0 then
    return
  end
  local nowText = toIntString(now)
  rcall("HSET", jobKey, "fi", nowText, "ok", "0", "r", '{"error":"unreadable job hash"}')
  rcall("ZREM", keys.running, id)
  rcall("ZREM", keys.leases, id)
  rcall("ZADD", keys.finished, nowText, id)
end
