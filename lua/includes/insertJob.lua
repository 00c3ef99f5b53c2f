--[[
  Inserts one new pending job, applying the replace rule first.

  Replace rule: every job with the same type and userId that has not started, or started
  more than staleAfterMs before now and has not finished, is cancelled BEFORE the insert:
  finished with ok = 0 and r = {"cancelled":true,"replacedBy":<newId>}. The not-started
  one is found through `pending` (there is at most one); the stale running ones through
  one scan of `running` per script call, kept in ctx.stale.

  keys: the script's key table (seq, jobPrefix, due, pending, running, leases, finished).
  ctx:  {now = ms, staleAfterMs = ms, partitionCount = n, partitionIndex = i,
         stale = nil (filled on first use)}
  job:  {t = type, u = userId, d = JSON or nil, due = ms, cr = cron or nil, tz = zone or nil,
         ar = boolean, ard = ms, rmd = ms, rf = id or nil, a = attempt (>= 1)}
  Returns newId (string), cancelled ids (list of strings), and whether a worker must be
  woken (the job is due at or before now, or is now the earliest due job).
]]
--- @include "toIntString"
--- @include "appendChunked"
--- @include "finishJob"
--- @include "staleRunningJobs"

local function insertJob(keys, ctx, job)
  local now = ctx.now
  -- A bulk call reserves its sequence numbers with one INCRBY (ctx.nextSeq).
  local seq
  if ctx.nextSeq then
    seq = ctx.nextSeq
    ctx.nextSeq = seq + 1
  else
    seq = rcall("INCR", keys.seq)
  end
  local id = toIntString(seq * ctx.partitionCount + ctx.partitionIndex)
  local pair = job.t .. ":" .. job.u
  local replaced
  local cancelled = {}

  local pendingId = rcall("HGET", keys.pending, pair)
  if pendingId and rcall("HEXISTS", keys.jobPrefix .. pendingId, "st") == 0 then
    replaced = '{"cancelled":true,"replacedBy":' .. id .. '}'
    if finishJob(keys, pendingId, now, false, replaced) then
      cancelled[#cancelled + 1] = pendingId
    end
  end
  if not ctx.stale then
    ctx.stale = staleRunningJobs(keys, now, ctx.staleAfterMs)
  end
  local stale = ctx.stale[pair]
  if stale then
    replaced = replaced or '{"cancelled":true,"replacedBy":' .. id .. '}'
    for _, staleId in ipairs(stale) do
      if finishJob(keys, staleId, now, false, replaced) then
        cancelled[#cancelled + 1] = staleId
      end
    end
    ctx.stale[pair] = nil
  end

  local nowText = toIntString(now)
  local dueText = toIntString(job.due)
  local args = {"t", job.t, "u", job.u}
  if job.d then appendChunked(args, "d", job.d) end
  if job.due ~= now then args[#args + 1] = "du"; args[#args + 1] = dueText end
  if job.cr then args[#args + 1] = "cr"; args[#args + 1] = job.cr end
  if job.tz then args[#args + 1] = "tz"; args[#args + 1] = job.tz end
  if job.ar then args[#args + 1] = "ar"; args[#args + 1] = "1" end
  if job.ard ~= 0 then args[#args + 1] = "ard"; args[#args + 1] = toIntString(job.ard) end
  if job.rmd ~= 0 then args[#args + 1] = "rmd"; args[#args + 1] = toIntString(job.rmd) end
  if job.rf then args[#args + 1] = "rf"; args[#args + 1] = job.rf end
  if job.a ~= 1 then args[#args + 1] = "a"; args[#args + 1] = toIntString(job.a) end
  args[#args + 1] = "ca"
  args[#args + 1] = nowText
  rcall("HSET", keys.jobPrefix .. id, unpack(args))
  rcall("ZADD", keys.due, dueText, id)
  rcall("HSET", keys.pending, pair, id)

  local wake = job.due <= now
  if not wake and not ctx.deferEarliestCheck then
    local first = rcall("ZRANGE", keys.due, 0, 0)
    wake = first[1] == id
  end
  return id, cancelled, wake
end
