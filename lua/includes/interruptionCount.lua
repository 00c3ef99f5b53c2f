--[[
  How many times in a row a job's chain has been interrupted, this interruption included:
  the job's `ic` (interruptions before it, absent = 0) + 1. A job is interrupted when its
  worker is lost (lease expired: recoverJobs) or shuts down before the job ends
  (completeJobs with outcome "interrupted").

  job: the job as read by readJob.
]]
local function interruptionCount(job)
  return (tonumber(job.ic) or 0) + 1
end
