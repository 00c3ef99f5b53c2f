--[[
  Inserts one new pending job, applying the replace rule first.

  Replace rule: every job with the same type and userId that has not started, or started
  more than staleAfterMs before now and has not finished, is cancelled BEFORE the insert:
  finished with ok = 0 and r = {"cancelled":true,"replacedBy":<newId>}. The not-started
  one is found through `pending` (there is at most one); the stale running ones through
  the `stale` index (includes/staleRunningJobs), in O(1) for the pair.

  keys: the script's key table (seq, jobPrefix, due, pending, running, leases, finished,
        stale).
  ctx:  {now = ms, staleAfterMs = ms, partitionCount = n, partitionIndex = i,
         staleCutoff = nil (set by the first sweep of the call),
         nextSeq = first reserved sequence number, or nil to reserve one per job,
         deferred = nil, or {due = {}, pending = {}, cancelled = {}} to leave the `due` ZADD
                    and the `pending` HSET to the caller (flushDeferredInserts), one
                    command each for a whole bulk call,
         pendingBefore = nil, or pair -> id (false = none) read from `pending` before the
                    call's first insert; only inserts of the same pair change a pair's
                    field, and those are in `deferred`}
  job:  {t = type, u = userId, d = JSON or nil, due = ms, cr = cron or nil, tz = zone or nil,
         ar = boolean, ard = ms, rmd = ms, rf = id or nil, a = attempt (>= 1),
         am = most attempts or nil, bx = backoff cap ms or nil,
         ic = consecutive interruptions before this job (re-runs only), or nil,
         tc = trace context of the span that scheduled it, or nil}
  Returns newId (string), cancelled ids (list of strings), and whether a worker must be
  woken (the job is due at or before now, or is now the earliest due job).
]]
--- @include "toIntString"
--- @include "appendChunked"
--- @include "finishJob"
--- @include "staleRunningJobs"
--- @include "reserveIds"

local function insertJob(keys, ctx, job)
  local now = ctx.now
  -- A bulk call reserves its sequence numbers at once (ctx.nextSeq).
  local seq
  if ctx.nextSeq then
    seq = ctx.nextSeq
    ctx.nextSeq = seq + 1
  else
    seq = reserveIds(keys.seq, 1, now, ctx.partitionCount)
  end
  local id = toIntString(seq * ctx.partitionCount + ctx.partitionIndex)
  local pair = job.t .. ":" .. job.u
  local replaced
  local cancelled = {}

  local deferred = ctx.deferred
  -- An earlier job of the same call is in `deferred`, not yet in `pending`; else the
  -- call's one HMGET of `pending` (ctx.pendingBefore), else an HGET.
  local pendingId = deferred and deferred.pending[pair]
  if pendingId == nil and ctx.pendingBefore then pendingId = ctx.pendingBefore[pair] end
  if pendingId == nil then pendingId = rcall("HGET", keys.pending, pair) end
  if pendingId and rcall("HEXISTS", keys.jobPrefix .. pendingId, "st") == 0 then
    replaced = '{"cancelled":true,"replacedBy":' .. id .. '}'
    if finishJob(keys, pendingId, now, false, replaced) then
      cancelled[#cancelled + 1] = pendingId
      if deferred then deferred.cancelled[pendingId] = true end
    end
  end
  local stale = staleRunningJobs(keys, ctx, pair)
  if #stale > 0 then
    replaced = replaced or '{"cancelled":true,"replacedBy":' .. id .. '}'
    for _, staleId in ipairs(stale) do
      if finishJob(keys, staleId, now, false, replaced) then
        cancelled[#cancelled + 1] = staleId
      end
    end
  end

  -- One formatting of `now` per call, not per job.
  local nowText = ctx.nowText
  if not nowText then
    nowText = toIntString(now)
    ctx.nowText = nowText
  end
  local dueText = job.due == now and nowText or toIntString(job.due)
  local data, args = job.d
  if job.due == now and job.a == 1 and job.ard == 0 and job.rmd == 0 and not (job.cr or job.tz or job.ar
      or job.rf or job.am or job.bx or job.ic or job.tc) and (not data or #data <= 126) then
    -- A plain job due now (most bulk calls): its arguments in one table constructor,
    -- data in at most two parts, split as appendChunked splits it (growing the table
    -- one field at a time was ≈ 10 % of a bulk call's script time).
    if not data then
      args = {"t", job.t, "u", job.u, "ca", nowText}
    elseif #data <= 64 then
      args = {"t", job.t, "u", job.u, "d", data, "ca", nowText}
    else
      args = {"t", job.t, "u", job.u, "d", string.sub(data, 1, 63), "d2", string.sub(data, 64), "ca", nowText}
    end
  else
    args = {"t", job.t, "u", job.u}
    if data then appendChunked(args, "d", data) end
    -- The due time as an offset from `ca` (= now): a few bytes instead of 13 digits.
    if job.due ~= now then args[#args + 1] = "dd"; args[#args + 1] = toIntString(job.due - now) end
    if job.cr then args[#args + 1] = "cr"; args[#args + 1] = job.cr end
    if job.tz then args[#args + 1] = "tz"; args[#args + 1] = job.tz end
    if job.ar then args[#args + 1] = "ar"; args[#args + 1] = "1" end
    if job.ard ~= 0 then args[#args + 1] = "ard"; args[#args + 1] = toIntString(job.ard) end
    if job.rmd ~= 0 then args[#args + 1] = "rmd"; args[#args + 1] = toIntString(job.rmd) end
    if job.rf then args[#args + 1] = "rf"; args[#args + 1] = job.rf end
    if job.a ~= 1 then args[#args + 1] = "a"; args[#args + 1] = toIntString(job.a) end
    if job.am then args[#args + 1] = "am"; args[#args + 1] = toIntString(job.am) end
    if job.bx then args[#args + 1] = "bx"; args[#args + 1] = toIntString(job.bx) end
    if job.ic then args[#args + 1] = "ic"; args[#args + 1] = toIntString(job.ic) end
    if job.tc then args[#args + 1] = "tc"; args[#args + 1] = job.tc end
    args[#args + 1] = "ca"
    args[#args + 1] = nowText
  end
  rcall("HSET", keys.jobPrefix .. id, unpack(args))
  if deferred then
    local due = deferred.due
    due[#due + 1] = dueText
    due[#due + 1] = id
    deferred.pending[pair] = id
  else
    rcall("ZADD", keys.due, dueText, id)
    rcall("HSET", keys.pending, pair, id)
  end

  local wake = job.due <= now
  if not wake and not ctx.deferEarliestCheck then
    local first = rcall("ZRANGE", keys.due, 0, 0)
    wake = first[1] == id
  end
  return id, cancelled, wake
end

--[[
  Writes what insertJob deferred (ctx.deferred): one ZADD to `due` and one HSET of
  `pending` for all jobs of the call that were not cancelled by a later one of it.
]]
local function flushDeferredInserts(keys, deferred)
  local dueArgs, pendingArgs = {}, {}
  for i = 1, #deferred.due, 2 do
    local id = deferred.due[i + 1]
    if not deferred.cancelled[id] then
      dueArgs[#dueArgs + 1] = deferred.due[i]
      dueArgs[#dueArgs + 1] = id
    end
  end
  for pair, id in pairs(deferred.pending) do
    if not deferred.cancelled[id] then
      pendingArgs[#pendingArgs + 1] = pair
      pendingArgs[#pendingArgs + 1] = id
    end
  end
  -- unpack() is limited by Lua's C stack: at most 1000 arguments per command.
  for from = 1, #dueArgs, 1000 do
    rcall("ZADD", keys.due, unpack(dueArgs, from, math.min(from + 999, #dueArgs)))
  end
  for from = 1, #pendingArgs, 1000 do
    rcall("HSET", keys.pending, unpack(pendingArgs, from, math.min(from + 999, #pendingArgs)))
  end
end
