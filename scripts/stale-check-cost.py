#!/usr/bin/env python3
"""Cost of one scheduleJobs call while 20,000 running jobs started over an hour ago.

Usage: python3 scripts/stale-check-cost.py LUA_DIR old|new PORT
  LUA_DIR  a lua/ folder (this one, or an older commit's: git archive <commit> lua | tar -x -C /tmp/x)
  old|new  the script layout: "new" for scheduleJobs-9 (the `stale` index, issue 11), "old" before it
  PORT     a redis-server on 127.0.0.1 (keys under stalecost:* are replaced)

Prints the first schedule (which sweeps the stale jobs into the index once) and the median
and p90 of 50 later schedules of other pairs. docs/benchmarks.md has the figures.
"""
import os, sys, time, importlib.util
lua_dir = sys.argv[1]; layout11 = sys.argv[2] == "new"; port = int(sys.argv[3])
os.environ["LUA_DIR"] = lua_dir
spec = importlib.util.spec_from_file_location("sc", os.path.join(os.path.dirname(os.path.abspath(__file__)), "script-cost.py"))
sc = importlib.util.module_from_spec(spec)
sys.argv = ["x"]; spec.loader.exec_module(sc)
r = sc.Redis("127.0.0.1", port)
P = "stalecost:{p0}:"
name = [n for n in os.listdir(lua_dir) if n.startswith("scheduleJobs-")][0]
sha = r.call("SCRIPT", "LOAD", sc.expand(name, set()))
keys = [P + k for k in ["seq", "job:", "due", "pending", "running", "leases", "finished", "wake"]] + ([P + "stale"] if layout11 else []) + ([P + "paused"] if name == "scheduleJobs-10.lua" else [])
cursor = b"0"
while True:
    cursor, found = r.call("SCAN", cursor, "MATCH", P + "*", "COUNT", 1000)
    if found: r.call("UNLINK", *found)
    if cursor == b"0": break
now = int(time.time() * 1000); old = now - 2 * 3600_000
for start in range(0, 20000, 1000):
    args = []
    for i in range(start, start + 1000):
        r.call("HSET", P + "job:%d" % (i + 1), "t", "long", "u", str(i), "ca", str(old), "st", str(old), "w", "w1")
        args += [old, i + 1]
    r.call("ZADD", P + "running", *args)
def schedule(user):
    per = [b"short", user, "", "", "", "", "", "", "", "", ""] + (["", ""] if layout11 else [])
    t = time.perf_counter()
    r.call("EVALSHA", sha, len(keys), *keys, now if not layout11 else "", 3600_000, 1, 0, 1, *per)
    return (time.perf_counter() - t) * 1000
first = schedule(1)
rest = sorted(schedule(u) for u in range(2, 52))
print(f"{'issue-11' if layout11 else 'before'}: first call {first:.2f} ms, then median {rest[len(rest)//2]:.3f} ms, p90 {rest[int(len(rest)*0.9)]:.3f} ms per schedule (50 calls)")
