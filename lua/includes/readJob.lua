--[[
  Reads a job hash into a table field -> value (parts of `d` and `r` joined, see
  readJobFields). Returns nil when the job does not exist.
]]
--- @include "readJobFields"

local function readJob(jobKey)
  local fields = readJobFields(jobKey)
  if #fields == 0 then
    return nil
  end
  local job = {}
  for i = 1, #fields, 2 do
    job[fields[i]] = fields[i + 1]
  end
  return job
end
