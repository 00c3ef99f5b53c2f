--[[
  Memory experiment for issue 14 (docs/benchmarks.md, "Layout memory experiment"): fills one
  partition with N waiting jobs (100-byte payload) in one of three shapes, so used_memory
  can be compared. Not used by Conveyor.
  ARGV[1] shape: A = today's (job hash split in 63-byte parts, `due` ZSET of ids, `pending`
  HASH); D = the job packed into its `due` member, `pending` HASH kept; E = D with `pending`
  and an id -> due index sharded into small (listpack) hashes.
  ARGV[2] N.
  ARGV[3] optional: "peers" = the job of ../shared/peers's memory test (type benchNoop, data
  {"payload":"<100 x>"}, 114 bytes, split in 63-byte parts in shape A as Conveyor writes it).
  Shape F is the floor of any layout that keeps a due-time ZSET: the packed member alone,
  no lookup by id or by (type, user).
  Shape G keeps all three lookups without a sorted-set entry per job: packed jobs in small
  (listpack) hashes of at most 128 jobs of close due times, a `due` ZSET of those buckets,
  and E's sharded id and (type, user) indices pointing at the bucket.
]]
local shape = ARGV[1]
local n = tonumber(ARGV[2])
local peers = ARGV[3] == 'peers'
local payload = peers and ('{"payload":"' .. string.rep('x', 100) .. '"}') or ('{"p":"' .. string.rep('x', 90) .. '"}')
local jobType = peers and 'benchNoop' or 'noop'
local ns = peers and 'conveyor' or 'ns'
local base = 29432676013057
local pendingShards = math.max(1, math.ceil(n / 256))
for i = 1, n do
  local id = base + i * 1024
  local idText = string.format('%d', id)
  local due = 1795963321321 + i
  local user = tostring(i)
  if shape == 'A' then
    local fields = {'t', jobType, 'u', user, 'd', string.sub(payload, 1, 63), 'd2', string.sub(payload, 64, 126)}
    if #payload > 126 then fields[#fields + 1] = 'd3'; fields[#fields + 1] = string.sub(payload, 127) end
    if not peers then fields[#fields + 1] = 'dd'; fields[#fields + 1] = '3600000' end
    fields[#fields + 1] = 'ca'; fields[#fields + 1] = '1795963321321'
    redis.call('HSET', ns .. ':{p0}:job:' .. idText, unpack(fields))
    redis.call('ZADD', ns .. ':{p0}:due', due, idText)
    redis.call('HSET', ns .. ':{p0}:pending', jobType .. '\0' .. user, idText)
  elseif shape == 'G' or shape == 'H' then
    -- Bucket i // 128 (the 128 jobs of closest due time), scored by its earliest job.
    local bucket = string.format('%d', math.floor(i / 128))
    local packed = jobType .. '\0' .. user .. '\0' .. '1795963321321\0' .. payload
    if shape == 'G' then
      redis.call('HSET', ns .. ':{p0}:bucket:' .. bucket, idText, packed)
    else
      redis.call('RPUSH', ns .. ':{p0}:bucket:' .. bucket, idText .. '\0' .. packed)
    end
    redis.call('ZADD', ns .. ':{p0}:due', 'NX', due, bucket)
    redis.call('HSET', ns .. ':{p0}:pending:' .. (i % pendingShards), jobType .. '\0' .. user, idText)
    redis.call('HSET', ns .. ':{p0}:byId:' .. string.format('%d', math.floor(id / 65536)), idText, bucket)
  else
    local packed = idText .. '\0' .. jobType .. '\0' .. user .. '\0' .. (peers and '' or '3600000') .. '\0' .. '1795963321321\0' .. payload
    redis.call('ZADD', ns .. ':{p0}:due', due, packed)
    if shape == 'D' then
      redis.call('HSET', ns .. ':{p0}:pending', jobType .. '\0' .. user, idText)
    elseif shape == 'F' then
      -- nothing else: the floor
    else
      redis.call('HSET', ns .. ':{p0}:pending:' .. (i % pendingShards), jobType .. '\0' .. user, idText)
      redis.call('HSET', ns .. ':{p0}:byId:' .. string.format('%d', math.floor(id / 65536)), idText, due)
    end
  end
end
return n
