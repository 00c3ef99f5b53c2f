--[[
  After a running job has been finished, inserts the job that continues it, if any:
  - interrupted (its worker was lost, or shut down before it ended), fewer than
    ctx.maxInterruptions times in a row -> a re-run, whatever `ar` says: due now,
    attempt a + 1, ic = interruptions so far. Every scheduled job runs at least once.
  - failed (not interrupted, or interrupted once too often) and ar = 1 -> a retry: due
    now + ard, attempt a + 1. A job interrupted ctx.maxInterruptions times in a row is
    not retried: it would most likely take its worker down again. With `am` (most
    attempts) a job whose attempt a >= am is not retried. With `bx` the delay grows:
    min(bx, max(ard, 1000) * 2^(a - 1)), then jittered down by up to half (from the
    microseconds of Redis's TIME: Lua's math.random repeats itself in every script), so
    failing jobs spread out instead of retrying in lockstep.
  - otherwise, cr is set   -> the next cron run: due cronNextDue (computed by the caller;
    nil means there is none), attempt 1. This also follows a failure that is not retried,
    so a cron chain never ends because one run failed.
  The new job copies t, u, d, cr, tz, ar, ard, rmd, am, bx (and tc, the trace context, for a
  re-run or retry: the same message again, not a new cron run), gets rf = id, and goes through
  insertJob, so it replaces any matching pending job - unless that pending job was
  scheduled after the finished job started (ca >= st): then the app's newer schedule wins,
  no follow-up is inserted, and the finished job records sb = the newer job's id.

  job: the finished job as read by readJob BEFORE it was finished.
  outcome: "ok", "failed" or "interrupted".
  Returns newId (string) or nil, and whether a worker must be woken.
]]
--- @include "insertJob"
--- @include "interruptionCount"
--- @include "retryDelay"

local function scheduleFollowUp(keys, ctx, id, job, outcome, cronNextDue)
  local due, attempt, interruptions
  local traceContext = job.tc
  local gaveUp = false
  if outcome == "interrupted" then
    interruptions = interruptionCount(job)
    gaveUp = interruptions >= ctx.maxInterruptions
  end
  if outcome == "interrupted" and not gaveUp then
    due = ctx.now
    attempt = (tonumber(job.a) or 1) + 1
  elseif outcome == "failed" and job.ar == "1" and not (job.am and (tonumber(job.a) or 1) >= tonumber(job.am)) then
    due = ctx.now + retryDelay(job, id)
    attempt = (tonumber(job.a) or 1) + 1
    interruptions = nil
  elseif job.cr and cronNextDue then
    due = cronNextDue
    attempt = 1
    interruptions = nil
    traceContext = nil
  else
    return nil, false
  end
  local newer = rcall("HGET", keys.pending, job.t .. ":" .. job.u)
  if newer and job.st then
    local createdAt = tonumber(rcall("HGET", keys.jobPrefix .. newer, "ca"))
    if createdAt and createdAt >= tonumber(job.st) then
      rcall("HSET", keys.jobPrefix .. id, "sb", newer)
      return nil, false
    end
  end
  local newId, _, wake = insertJob(keys, ctx, {
    t = job.t, u = job.u, d = job.d, due = due, cr = job.cr, tz = job.tz,
    ar = job.ar == "1", ard = tonumber(job.ard) or 0, rmd = tonumber(job.rmd) or 0,
    rf = id, a = attempt, ic = interruptions, am = tonumber(job.am), bx = tonumber(job.bx), tc = traceContext,
  })
  return newId, wake
end
