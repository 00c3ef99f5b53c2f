--[[
  The partition's pause (docs/cluster.md §7): while `paused` exists, a slot move
  (`conveyor cluster-move-partition`) is under way and the partition's job hashes may be
  split between two masters, where a script would fail half-way (source) or read a job as
  missing (target). Called first, before any other read and before any write, so a paused
  call changes nothing: it answers TRYAGAIN, which the cluster client retries with backoff.
  One EXISTS of a declared key: the key travels with the slot (moved last), so the check
  holds on whichever node runs the script.
]]
local function checkPaused(pausedKey)
  if rcall("EXISTS", pausedKey) == 1 then
    error({err = "TRYAGAIN conveyor: partition paused while its slot moves (" .. pausedKey .. "), try again"})
  end
end
