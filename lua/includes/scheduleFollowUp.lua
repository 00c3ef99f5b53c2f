--[[
  After a running job has been finished, inserts the job that continues it, if any:
  - failed and ar = 1      -> a retry: due now + ard, attempt a + 1;
  - otherwise, cr is set   -> the next cron run: due cronNextDue (computed by the caller;
    nil means there is none), attempt 1. This also follows a failure that is not retried,
    so a cron chain never ends because one run failed.
  The new job copies t, u, d, cr, tz, ar, ard, rmd, gets rf = id, and goes through
  insertJob, so it replaces any matching pending job.

  job: the finished job as read by readJob BEFORE it was finished.
  Returns newId (string) or nil, and whether a worker must be woken.
]]
--- @include "insertJob"

local function scheduleFollowUp(keys, ctx, id, job, success, cronNextDue)
  local due, attempt
  if not success and job.ar == "1" then
    due = ctx.now + (tonumber(job.ard) or 0)
    attempt = (tonumber(job.a) or 1) + 1
  elseif job.cr and cronNextDue then
    due = cronNextDue
    attempt = 1
  else
    return nil, false
  end
  local newId, _, wake = insertJob(keys, ctx, {
    t = job.t, u = job.u, d = job.d, due = due, cr = job.cr, tz = job.tz,
    ar = job.ar == "1", ard = tonumber(job.ard) or 0, rmd = tonumber(job.rmd) or 0,
    rf = id, a = attempt,
  })
  return newId, wake
end
