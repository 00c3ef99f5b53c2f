--[[
  Memory experiment for issue 14 (docs/benchmarks.md, "Layout memory experiment"): fills one
  partition with N waiting jobs (100-byte payload) in one of three shapes, so used_memory
  can be compared. Not used by Conveyor.
  ARGV[1] shape: A = today's (job hash split in 63-byte parts, `due` ZSET of ids, `pending`
  HASH); D = the job packed into its `due` member, `pending` HASH kept; E = D with `pending`
  and an id -> due index sharded into small (listpack) hashes.
  ARGV[2] N.
]]
local shape = ARGV[1]
local n = tonumber(ARGV[2])
local payload = '{"p":"' .. string.rep('x', 90) .. '"}'
local base = 29432676013057
local pendingShards = math.max(1, math.ceil(n / 256))
for i = 1, n do
  local id = base + i * 1024
  local idText = string.format('%d', id)
  local due = 1795963321321 + i
  local user = tostring(i)
  if shape == 'A' then
    redis.call('HSET', 'ns:{p0}:job:' .. idText, 't', 'noop', 'u', user, 'd', string.sub(payload, 1, 63),
      'd2', string.sub(payload, 64), 'dd', '3600000', 'ca', '1795963321321')
    redis.call('ZADD', 'ns:{p0}:due', due, idText)
    redis.call('HSET', 'ns:{p0}:pending', 'noop\0' .. user, idText)
  else
    local packed = idText .. '\0noop\0' .. user .. '\0' .. '3600000\0' .. '1795963321321\0' .. payload
    redis.call('ZADD', 'ns:{p0}:due', due, packed)
    if shape == 'D' then
      redis.call('HSET', 'ns:{p0}:pending', 'noop\0' .. user, idText)
    else
      redis.call('HSET', 'ns:{p0}:pending:' .. (i % pendingShards), 'noop\0' .. user, idText)
      redis.call('HSET', 'ns:{p0}:byId:' .. string.format('%d', math.floor(id / 65536)), idText, due)
    end
  end
end
return n
