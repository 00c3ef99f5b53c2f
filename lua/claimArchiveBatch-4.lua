#!lua flags=allow-oom
--[[
  Claims a batch of finished jobs whose removeAt has passed for one archiver, or returns
  the batch that archiver already holds (a resume after a crash or a failed write).

  A claim is an entry `archiving[id] = archiverId`; the job stays in `finished` and keeps
  its hash until deleteArchivedJobs runs, so a claimed job is never lost. An archiver holds
  at most one batch per partition: while it holds one, this returns that batch again
  (resumed = 1) and claims nothing, so the caller reconciles it against the tail of its
  log before it writes. Jobs claimed by other archivers are skipped.

    Input:
      KEYS[1] jobPrefix         prefix of job hashes, e.g. "conveyor:{p0}:job:" (not a key)
      KEYS[2] finished  ZSET    id -> removeAt ms
      KEYS[3] archiving HASH    id -> archiverId of the claim
      KEYS[4] paused    STRING  set while the slot moves: every call answers TRYAGAIN (includes/checkPaused)

      ARGV[1] now               ms since epoch; jobs with removeAt <= now are due. "" = Redis's
                                clock (TIME), as production callers send; tests only pass one
      ARGV[2] archiverId        the claiming archiver's identity (non-empty text)
      ARGV[3] maxCount          largest batch, 0..1000; 0 = only return the held batch

    Output:
      {resumed, nextRemoveAt, now, id1, id2, ...}
        resumed       1 when the jobs are the batch this archiver already held, else 0
        nextRemoveAt  removeAt ms of the earliest finished job not claimed by anyone after
                      this call, or -1 when there is none
        now           the time the script used, ms (Redis's clock unless a test passed one):
                      the caller sleeps until nextRemoveAt on this clock, not its own
        idN           integer ids of the claimed jobs. The caller reads them with plain
                      HGETALLs (pipelined): a claimed finished job's hash does not change
                      until its claimer deletes it, and HGETALL outside Lua costs Redis
                      about a third of what reading and returning it from here did.
      error "ERR conveyor: ..." when an argument is invalid (nothing is written then)
]]
local rcall = redis.call
--- @include "checkPaused"
checkPaused(KEYS[4])

local jobPrefix = KEYS[1]
local finishedKey = KEYS[2]
local archivingKey = KEYS[3]

--- @include "checkInt"
--- @include "toIntString"
--- @include "redisNow"

local now = redisNow(ARGV[1])
local archiverId = ARGV[2]
if archiverId == nil or archiverId == "" then
  error({err = "ERR conveyor: archiverId must not be empty"})
end
local maxCount = checkInt(ARGV[3], "maxCount")
if maxCount < 0 or maxCount > 1000 then
  error({err = "ERR conveyor: maxCount must be between 0 and 1000, got " .. toIntString(maxCount)})
end

-- A member of `finished` that is not an id (written by a foreign version) is never
-- claimed nor reported as nextRemoveAt: claimed, it would be a held batch the caller can
-- never finish (it reads ids as integers), so the archiver would resume it forever; as
-- nextRemoveAt, it would wake the archiver at once, again and again. It stays in
-- `finished` (`jobs counts` shows it), while the jobs around it are archived.
local function isId(member)
  return string.find(member, "^%d+$") ~= nil
end

local claims = rcall("HGETALL", archivingKey)
local claimed, claimedCount, mine = {}, 0, {}
for i = 1, #claims, 2 do
  claimed[claims[i]] = true
  claimedCount = claimedCount + 1
  if claims[i + 1] == archiverId and isId(claims[i]) then
    mine[#mine + 1] = claims[i]
  end
end

local resumed, ids = 0, mine
if #mine > 0 then
  resumed = 1
  table.sort(mine, function(a, b) return tonumber(a) < tonumber(b) end)
elseif maxCount > 0 then
  ids = {}
  -- At most claimedCount of the first candidates are claimed by others.
  local candidates = rcall("ZRANGEBYSCORE", finishedKey, "-inf", toIntString(now),
    "LIMIT", 0, maxCount + claimedCount)
  local args = {}
  for _, id in ipairs(candidates) do
    if #ids < maxCount and not claimed[id] and isId(id) then
      ids[#ids + 1] = id
      args[#args + 1] = id
      args[#args + 1] = archiverId
    end
  end
  if #ids > 0 then
    rcall("HSET", archivingKey, unpack(args))
    for _, id in ipairs(ids) do
      claimed[id] = true
    end
    claimedCount = claimedCount + #ids
  end
end

local nextRemoveAt = -1
local head = rcall("ZRANGE", finishedKey, 0, claimedCount, "WITHSCORES")
for i = 1, #head, 2 do
  if not claimed[head[i]] and isId(head[i]) then
    nextRemoveAt = tonumber(head[i + 1])
    break
  end
end

local result = {resumed, nextRemoveAt, now}
for _, id in ipairs(ids) do
  result[#result + 1] = tonumber(id)
end
return result
