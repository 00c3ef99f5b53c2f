--[[
  A floor for measurements (issue 14; scripts/producer-floors.sh), not used by Conveyor:
  what inserting plain jobs due now costs Redis with today's layout (a hash per job, the
  `due` ZSET, the `pending` HASH) and nothing else: no validation, no replace rule, no
  stale sweep, no pause check, no wake. Same KEYS and ARGV as lua/scheduleJobs-10.lua with
  fieldsPerJob 4 (ARGV[6] fieldsPerJob), so scripts/schedule-call-cost.py can drive it.
]]
local rcall = redis.call
local time = rcall("TIME")
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local nowText = string.format("%d", now)
local count, fieldsPerJob = tonumber(ARGV[5]), tonumber(ARGV[6])
local last = tonumber(rcall("GET", KEYS[1]) or "0")
rcall("SET", KEYS[1], string.format("%d", last + count))
local due, pending, result = {}, {}, {now}
for j = 1, count do
  local base = 7 + (j - 1) * fieldsPerJob
  local jobType, userId, data = ARGV[base], ARGV[base + 1], ARGV[base + 2]
  local id = string.format("%d", last + j)
  if #data > 64 then
    rcall("HSET", KEYS[2] .. id, "t", jobType, "u", userId, "d", string.sub(data, 1, 63), "d2", string.sub(data, 64, 126), "ca", nowText)
  else
    rcall("HSET", KEYS[2] .. id, "t", jobType, "u", userId, "d", data, "ca", nowText)
  end
  due[#due + 1] = nowText; due[#due + 1] = id
  pending[#pending + 1] = jobType .. ":" .. userId; pending[#pending + 1] = id
  result[#result + 1] = last + j; result[#result + 1] = 0
end
rcall("ZADD", KEYS[3], unpack(due))
rcall("HSET", KEYS[4], unpack(pending))
return result
