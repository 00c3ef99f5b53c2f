#!/usr/bin/env python3
"""Redis time per `scheduleJobs` call, at a given number of jobs per call.

Loads lua/scheduleJobs-<N>.lua (includes expanded as scripts/script-cost.py does; LUA_DIR
points at another lua/ to compare a variant without a build), then runs --jobs jobs
through it, --per jobs per call, each call with now = "" (Redis's clock, as production
callers send) and a distinct userId per job, and prints the script's time per call and
per job from INFO commandstats (`evalsha` usec) and redis-server's CPU per job. The
single-job call (--per 1) is what an awaited `scheduleJob` costs Redis.

    python3 scripts/schedule-call-cost.py --port 6379 [--per 1] [--jobs 20000] [--pid PID] [--payload-bytes 100]

Writes only keys of its own namespace (`schedule-call-cost:{p0}:*`), deleted after each run.
"""
import argparse
import importlib.util
import os
import re
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("script_cost", os.path.join(HERE, "script-cost.py"))
script_cost = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script_cost)
PREFIX = "schedule-call-cost:{p0}:"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--per", type=int, default=1, help="jobs per call (1 ..= 1000)")
    parser.add_argument("--fields", type=int, default=4, choices=[4, 13], help="arguments per job (scripts that take fieldsPerJob)")
    parser.add_argument("--pid", type=int, default=0, help="redis-server's pid, for its CPU time (optional)")
    parser.add_argument("--payload-bytes", type=int, default=0,
                        help="length of each job's payload string (../shared/peers' job: 100)")
    options = parser.parse_args()
    redis = script_cost.Redis(options.host, options.port)
    name = next(n for n in os.listdir(script_cost.LUA_DIR) if re.fullmatch(r"scheduleJobs-\d+\.lua", n))
    sha = redis.call("SCRIPT", "LOAD", script_cost.expand(name, set()))
    keys = [PREFIX + name for name in ["seq", "job:", "due", "pending", "running", "leases", "finished", "wake", "stale"]]
    # scheduleJobs-10 also declares the partition's pause key (docs/cluster.md §7).
    keys += [PREFIX + "paused"] if name == "scheduleJobs-10.lua" else []
    # Issue 14: ARGV[6] fieldsPerJob, 4 when every job takes the defaults (--fields 13: all sent).
    compact = "ARGV[6] fieldsPerJob" in script_cost.expand(name, set())
    options.fields = options.fields if compact else 13

    def clean():
        script_cost.unlink_prefix(redis, PREFIX)

    def cpu():
        if not options.pid:
            return 0.0
        fields = open(f"/proc/{options.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def evalsha_usec():
        info = redis.call("INFO", "commandstats").decode()
        found = re.search(r"cmdstat_evalsha:calls=(\d+),usec=(\d+)", info)
        return (int(found.group(1)), int(found.group(2))) if found else (0, 0)

    clean()
    calls0, usec0 = evalsha_usec()
    cpu0, start = cpu(), time.time()
    data = '{"payload":"' + "x" * options.payload_bytes + '"}'
    for first in range(0, options.jobs, options.per):
        count = min(options.per, options.jobs - first)
        args = ["", 3_600_000, 1, 0, count] + ([options.fields] if compact else [])
        for user in range(first, first + count):
            args += ["noop", user, data, ""] + ([] if options.fields == 4 else [""] * 9)
        reply = redis.call("EVALSHA", sha, len(keys), *keys, *args)
        if not isinstance(reply, list):
            raise RuntimeError(f"scheduleJobs returned {reply!r}")
    wall, cpu1 = time.time() - start, cpu()
    calls1, usec1 = evalsha_usec()
    calls, usec = calls1 - calls0, usec1 - usec0
    line = f"{options.per} per call: script {usec / calls:8.2f} µs/call {usec / options.jobs:6.2f} µs/job"
    if options.pid:
        line += f"   redis cpu {1e6 * (cpu1 - cpu0) / options.jobs:6.2f} µs/job"
    print(line + f"   wall {1e6 * wall / calls:7.1f} µs/call")
    clean()


if __name__ == "__main__":
    main()
