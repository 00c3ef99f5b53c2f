#!/usr/bin/env python3
"""Redis CPU per job of each Lua script in lua/, measured in isolation.

Runs the life of N no-op jobs through the scripts, one call at a time, in batches
of B jobs per call: scheduleJobs (100 per call), claimJobs, completeJobs, then
claimArchiveBatch + deleteArchivedJobs. For each phase it prints the scripts' own
time per job (INFO commandstats, `evalsha` usec: Redis's clock around each call)
and the server's CPU per job (INFO cpu, includes reading and writing the calls).
The archive phase also splits claim and delete (an INFO per call, so its "redis
cpu" column is inflated; use the script columns there).

Reads lua/ directly (includes expanded as ConveyorLuaPlugin does), so a changed
script can be measured without a build: LUA_DIR=/tmp/variant python3 ...

    python3 scripts/script-cost.py [--port 6379] [--jobs 50000] [--batch 50]

Writes only keys of its own namespace (`script-cost:{p0}:*`), deleted at the end.
Nothing else may use that namespace. The machine's noise applies: repeat and compare
medians, ideally with redis-server pinned to one core and this script to another.
"""
import argparse
import os
import re
import socket
import time

LUA_DIR = os.environ.get("LUA_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lua"))
PREFIX = "script-cost:{p0}:"


def expand(path, seen):
    out = []
    for line in open(os.path.join(LUA_DIR, path)).read().split("\n"):
        include = re.match(r'--- @include "(\w+)"', line)
        if not include:
            out.append(line)
        elif include.group(1) not in seen:
            seen.add(include.group(1))
            out.append(expand(os.path.join("includes", include.group(1) + ".lua"), seen))
    return "\n".join(out)


class Redis:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.file = self.sock.makefile("rb")

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            arg = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
        return b"".join(out)

    def read(self):
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            return None if length < 0 else self.file.read(length + 2)[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.read() for _ in range(count)]
        raise RuntimeError("unexpected reply %r" % line)

    def call(self, *args):
        self.sock.sendall(self.encode(*args))
        return self.read()


def unlink_prefix(redis, prefix):
    """Deletes every key starting with `prefix` (SCAN, never KEYS: the server may be shared)."""
    cursor = b"0"
    while True:
        cursor, found = redis.call("SCAN", cursor, "MATCH", prefix + "*", "COUNT", 1000)
        if found:
            redis.call("UNLINK", *found)
        if cursor == b"0":
            return


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--future", type=int, default=0, help="jobs due tomorrow scheduled first (the claim-cost case)")
    options = parser.parse_args()
    redis = Redis(options.host, options.port)
    files = [name for name in os.listdir(LUA_DIR) if name.endswith(".lua")]
    scripts = {name.split("-")[0]: expand(name, set()) for name in files}
    # The contract changed with issue 10 (claim tokens, interruptions): measure
    # either layout, so LUA_DIR can point at an older lua/ for a comparison.
    # Issue 13: every partition script declares the pause key last (docs/cluster.md §7).
    paused = [PREFIX + "paused"] if "claimJobs-10.lua" in files else []
    token_claims = "claimJobs-8.lua" in files or "claimJobs-9.lua" in files or bool(paused)
    # Issue 11: stale and failed indexes, retry limits (two more fields per job).
    layout11 = "claimJobs-9.lua" in files or bool(paused)
    # Issue 14: scheduleJobs takes fieldsPerJob (4 when every job takes the defaults).
    compact = "ARGV[6] fieldsPerJob" in scripts["scheduleJobs"]
    sha = {name: redis.call("SCRIPT", "LOAD", source) for name, source in scripts.items()}
    keys = {name: PREFIX + name for name in [
        "seq", "due", "pending", "running", "leases", "finished", "wake", "archiving", "parked", "failed", "stale"]}
    keys["job"] = PREFIX + "job:"
    every = [keys[name] for name in ["seq", "job", "due", "pending", "running", "leases", "finished", "wake"]]
    jobs, batch = options.jobs, options.batch

    def clean():
        unlink_prefix(redis, PREFIX)

    def script(name, script_keys, args):
        return redis.call("EVALSHA", sha[name], len(script_keys), *script_keys, *args)

    def stats():
        # Scripts and the archiver's plain HGETALLs (inner commands of scripts
        # are counted inside `evalsha`'s time, and under their own names too).
        info = redis.call("INFO", "all").decode()
        cpu = sum(float(x) for x in re.findall(r"used_cpu_(?:sys|user):([\d.]+)", info))
        evalsha = re.search(r"cmdstat_evalsha:calls=\d+,usec=(\d+)", info)
        return cpu, (int(evalsha.group(1)) if evalsha else 0) + plain_hgetall[0]

    def phase(name, body):
        cpu0, usec0 = stats()
        start = time.time()
        body()
        cpu1, usec1 = stats()
        print(f"{name:13s} scripts {(usec1 - usec0) / jobs:6.2f} µs/job   redis cpu {1e6 * (cpu1 - cpu0) / jobs:6.2f} µs/job"
              f"   wall {1e6 * (time.time() - start) / jobs:6.1f} µs/job")

    clean()
    now = int(time.time() * 1000)

    def schedule(count=jobs, job_type="noop", due=""):
        for first in range(0, count, 100):
            args = [now, 3_600_000, 1, 0, min(100, count - first)] + ([4] if compact else [])
            for user in range(first, min(first + 100, count)):
                args += [job_type, user, "", due] + ([] if compact else ["", "", "", "", "", "", ""] + (["", ""] if layout11 else []))
            script("scheduleJobs", every + ([keys["stale"]] if layout11 else []) + paused, args)

    if options.future:
        print(f"scheduling {options.future} jobs due tomorrow first")
        schedule(options.future, "future", now + 86_400_000)

    claimed = []

    def claim():
        token = 0
        while True:
            claim_keys = [keys[k] for k in ["job", "due", "pending", "running", "leases", "wake"]]
            claim_args = [now + 1, "script-cost-worker", batch, 30_000]
            if token_claims:
                # The worker's claims hash; each claim names the previous token, as a worker does.
                token += 1
                claim_keys += [keys["parked"], PREFIX + "claims:script-cost-worker"] + ([keys["finished"]] if layout11 else [])
                claim_args += [token] + ([token - 1] if token > 1 else [])
            reply = script("claimJobs", claim_keys + paused, claim_args)
            header = 2 if token_claims else 1
            if len(reply) <= header:
                return
            claimed.extend(reply[header::2])

    def complete():
        for first in range(0, len(claimed), batch):
            ids = claimed[first:first + batch]
            args = [now + 2, 3_600_000, 1, 0, "script-cost-worker"] + ([3] if token_claims else [])
            args += ([7 * 86_400_000, 10_000] if layout11 else []) + [len(ids)]
            for job in ids:
                args += [job, 1, "", ""]
            script("completeJobs", every + ([keys["failed"], keys["stale"]] if layout11 else []) + paused, args)

    split = [0, 0, 0]
    plain_hgetall = [0]

    def hgetall_usec():
        info = redis.call("INFO", "commandstats").decode()
        found = re.search(r"cmdstat_hgetall:calls=\d+,usec=(\d+)", info)
        return int(found.group(1)) if found else 0

    def archive():
        archive_keys = [keys["job"], keys["finished"], keys["archiving"]]
        # deleteArchivedJobs-4 also removes the jobs' `failed` entries.
        delete_keys = archive_keys + ([keys["failed"]] if "deleteArchivedJobs-4.lua" in files or paused else []) + paused
        while True:
            before = stats()[1]
            reply = script("claimArchiveBatch", archive_keys + paused, [now + 10, "script-cost-archiver", batch])
            split[0] += stats()[1] - before
            ids = reply[3:]  # resumed, nextRemoveAt, now, ids...
            if not ids:
                return
            # The archiver reads the claimed hashes with pipelined HGETALLs; the
            # usec of those plain calls (not the ones inside scripts) counts here.
            before = hgetall_usec()
            redis.sock.sendall(b"".join(Redis.encode("HGETALL", keys["job"] + str(job)) for job in ids))
            for _ in ids:
                redis.read()
            spent = hgetall_usec() - before
            split[1] += spent
            plain_hgetall[0] += spent
            before = stats()[1]
            script("deleteArchivedJobs", delete_keys, ["script-cost-archiver", *ids])
            split[2] += stats()[1] - before

    print(f"{jobs} jobs, {batch} per claim/complete/archive call, redis at {options.host}:{options.port}")
    phase("schedule", lambda: schedule())
    phase("claim", claim)
    phase("complete", complete)
    phase("archive", archive)
    print(f"  archive: claim {split[0] / jobs:.2f}, HGETALL {split[1] / jobs:.2f}, delete {split[2] / jobs:.2f} µs/job (commandstats)")
    clean()


if __name__ == "__main__":
    main()
