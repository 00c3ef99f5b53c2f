@testable import Conveyor
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

private typealias Support = ArchiverTestSupport

@Suite("Archiver against a real server")
struct ArchiverTests {
    @Test("finished jobs (succeeded, failed, cancelled) are written as full records, synced, then deleted with every index entry")
    func archivesFinishedJobs() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 2, partitionTags: TestRedis.partitionTags)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var jobs = try await Support.makeFinishedJobs(client, keys: keys, count: 300)
            // A cancelled job finishes too.
            let scheduler = JobScheduler(client: client, configuration: .init(keys: keys))
            let pending = try await scheduler.scheduleJob(UntypedJobConfig(type: "archiveTest", userId: 99_999, due: Date().addingTimeInterval(3600)))
            #expect(try await scheduler.cancelJob(id: pending.id, reason: "not needed") == .cancelled)
            jobs.append(try #require(try await scheduler.job(id: pending.id)))
            let events = ArchiverEventLog()
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys, batchSize: 64), events: events) { _ async throws in
                #expect(try await eventually { try await Support.isClean(client, keys: keys) })
            }
            let ids = try Support.loggedIds(directory)
            #expect(ids.count == 301)
            #expect(Set(ids) == Set(jobs.map(\.id)))
            let entries = try await HistoryLog(directory: directory).entries(matching: HistoryQuery(limit: nil))
            let byId = Dictionary(uniqueKeysWithValues: entries.map { ($0.job.id, $0) })
            for job in jobs {
                let logged = try #require(byId[job.id])
                #expect(logged.job.id == job.id && logged.job.type == job.type && logged.job.userId == job.userId)
                #expect(logged.job.data == job.data, "data of \(job.id) survives, long payloads joined")
                #expect(logged.job.result == job.result)
                #expect(logged.job.success == job.success && logged.job.finished == job.finished && logged.job.started == job.started)
                #expect(logged.job.createdAt == job.createdAt && logged.job.due == job.due && logged.job.workerId == job.workerId)
                #expect(logged.archivedAt != nil)
            }
            #expect(byId[pending.id]?.job.result == .object(["cancelled": .bool(true), "reason": .string("not needed")]))
            #expect(events.failures.isEmpty)
            let keysLeft = try await TestRedis.keys(client, namespace: ns)
            #expect(!keysLeft.contains { $0.contains(":job:") || $0.hasSuffix(":finished") || $0.hasSuffix(":archiving") }, "\(keysLeft)")
        }
    }

    @Test("a job due for archiving later wakes the archiver at its removeAt, long before the pass interval")
    func wakesAtRemoveAt() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var configuration = Support.configuration(directory, keys: keys)
            configuration.passInterval = .seconds(60)
            try await Support.withArchiver(client, configuration) { archiver async throws in
                #expect(try await eventually { archiver.archiverId != nil })
                try await Task.sleep(for: .milliseconds(200))  // its first pass found nothing
                // removeDelay well above the checks below, so a loaded machine cannot race it.
                let jobs = try await Support.makeFinishedJobs(client, keys: keys, count: 3, removeDelay: 3_000)
                // The archiver sleeps for up to 60 s; it learns about the new removeAt on its next pass.
                archiver.wakeUp()
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await Support.leftInRedis(client, keys: keys).finished == 3, "kept until removeAt")
                let started = ContinuousClock.now
                #expect(try await eventually(timeout: .seconds(10)) { try await Support.isClean(client, keys: keys) })
                #expect(ContinuousClock.now - started < .seconds(8), "woken at removeAt, not after the 60 s pass interval")
                #expect(Set(try Support.loggedIds(directory)) == Set(jobs.map(\.id)))
            }
        }
    }

    @Test("resume: a claimed batch that was never written is written once")
    func resumeClaimedNotWritten() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let jobs = try await Support.makeFinishedJobs(client, keys: keys, count: 120)
            // An archiver "x1" claimed a batch and was killed before writing.
            let writer = try HistoryWriter.open(directory: directory, archiverId: "x1", maxFileSize: 1 << 20)
            _ = try await ArchiveStore(client: client, keys: keys).bind(archiverId: "x1", token: writer.token)
            writer.close()
            let claim = try await ArchiveStore(client: client, keys: keys).claim(partition: keys.partition(0), now: Date().milliseconds, archiverId: "x1", maxCount: 50)
            #expect(claim.ids.count == 50 && !claim.resumed)
            let events = ArchiverEventLog()
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys, archiverId: "x1"), events: events) { _ async throws in
                #expect(try await eventually { try await Support.isClean(client, keys: keys) })
            }
            let ids = try Support.loggedIds(directory)
            #expect(ids.count == 120 && Support.duplicates(ids).isEmpty && Set(ids) == Set(jobs.map(\.id)))
            #expect(events.resumes.first.map { $0.alreadyInLog == 0 && $0.written == 50 } == true, "\(events.resumes)")
        }
    }

    @Test("resume: a batch written and synced but not deleted is only deleted, never written again")
    func resumeWrittenNotDeleted() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let jobs = try await Support.makeFinishedJobs(client, keys: keys, count: 80)
            let store = ArchiveStore(client: client, keys: keys)
            let writer = try HistoryWriter.open(directory: directory, archiverId: "x2", maxFileSize: 1 << 20)
            _ = try await store.bind(archiverId: "x2", token: writer.token)
            let claim = try await store.claim(partition: keys.partition(0), now: Date().milliseconds, archiverId: "x2", maxCount: 50)
            try writer.append(try HistoryEntry.lines(claim.jobs.map { HistoryEntry(job: $0, archivedAt: Date()) }), now: Date())
            writer.close()  // killed here: written, synced, not deleted
            let events = ArchiverEventLog()
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys, archiverId: "x2"), events: events) { _ async throws in
                #expect(try await eventually { try await Support.isClean(client, keys: keys) })
            }
            let ids = try Support.loggedIds(directory)
            #expect(ids.count == 80, "duplicates: \(Support.duplicates(ids))")
            #expect(Set(ids) == Set(jobs.map(\.id)))
            #expect(events.resumes.first.map { $0.alreadyInLog == 50 && $0.written == 0 } == true, "\(events.resumes)")
        }
    }

    @Test("resume: a batch torn mid-write keeps its complete lines, loses the torn one, and writes the rest once")
    func resumeTornBatch() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let jobs = try await Support.makeFinishedJobs(client, keys: keys, count: 50)
            let store = ArchiveStore(client: client, keys: keys)
            let writer = try HistoryWriter.open(directory: directory, archiverId: "x3", maxFileSize: 1 << 20)
            _ = try await store.bind(archiverId: "x3", token: writer.token)
            let claim = try await store.claim(partition: keys.partition(0), now: Date().milliseconds, archiverId: "x3", maxCount: 50)
            let complete = try HistoryEntry.lines(claim.jobs.prefix(20).map { HistoryEntry(job: $0, archivedAt: Date()) })
            let torn = Array(try HistoryEntry.lines([HistoryEntry(job: claim.jobs[20], archivedAt: Date())]).prefix(57))
            try writer.append(complete + torn, now: Date())
            writer.close()  // killed in the middle of record 21
            let events = ArchiverEventLog()
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys, archiverId: "x3"), events: events) { _ async throws in
                #expect(try await eventually { try await Support.isClean(client, keys: keys) })
            }
            #expect(events.repairedBytes == [57])
            #expect(events.resumes.first.map { $0.alreadyInLog == 20 && $0.written == 30 } == true, "\(events.resumes)")
            let ids = try Support.loggedIds(directory)
            #expect(ids.count == 50 && Set(ids) == Set(jobs.map(\.id)), "duplicates: \(Support.duplicates(ids))")
        }
    }

    @Test("three archivers at once (two sharing a directory, one with its own) never write a job twice")
    func concurrentArchivers() async throws {
        try await TestRedis.withClient(poolSize: 8) { client, ns in
            let keys = try ConveyorKeys(namespace: ns, partitionCount: 2, partitionTags: TestRedis.partitionTags)
            let shared = Support.temporaryDirectory("shared")
            let own = Support.temporaryDirectory("own")
            defer {
                try? FileManager.default.removeItem(atPath: shared)
                try? FileManager.default.removeItem(atPath: own)
            }
            let jobs = try await Support.makeFinishedJobs(client, keys: keys, count: 3_000, read: false)
            let events = ArchiverEventLog()
            let configurations = [shared, shared, own].map { Support.configuration($0, keys: keys, batchSize: 25) }
            try await Support.withArchiver(client, configurations[0], events: events) { a async throws in
                try await Support.withArchiver(client, configurations[1], events: events) { b async throws in
                    try await Support.withArchiver(client, configurations[2], events: events) { c async throws in
                        #expect(try await eventually(timeout: .seconds(60)) { try await Support.isClean(client, keys: keys) })
                        let identities = [a.archiverId, b.archiverId, c.archiverId].compactMap { $0 }
                        #expect(Set(identities).count == 3, "each took its own identity: \(identities)")
                    }
                }
            }
            let ids = try Support.loggedIds(shared) + Support.loggedIds(own)
            #expect(Support.duplicates(ids).isEmpty, "written twice: \(Support.duplicates(ids).prefix(10))")
            #expect(Set(ids) == Set(jobs.map(\.id)) && ids.count == 3_000)
            let writers = Set(try HistoryFile.list(directory: shared).map(\.archiverId) + HistoryFile.list(directory: own).map(\.archiverId))
            #expect(writers.count >= 2, "several archivers took part: \(writers)")
            // The shared directory's log reads back merged, newest first.
            let merged = try await HistoryLog(directory: shared).entries(matching: HistoryQuery(limit: nil))
            #expect(merged.count == (try Support.loggedIds(shared)).count)
            #expect(zip(merged, merged.dropFirst()).allSatisfy { ($0.archivedAt ?? .distantPast) >= ($1.archivedAt ?? .distantPast) })
        }
    }

    @Test("a torn last line is cut off on start and never read as a record")
    func tornLastLineRepaired() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let first = try await Support.makeFinishedJobs(client, keys: keys, count: 10, firstUser: 1)
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys, archiverId: "torn")) { _ async throws in
                #expect(try await eventually { try await Support.isClean(client, keys: keys) })
            }
            let file = try #require(try HistoryFile.list(directory: directory).last)
            let torn = #"{"archivedAt":"2026-11-29T01:02:03.456Z","id":424242,"type":"archiveTe"#
            let handle = try #require(FileHandle(forWritingAtPath: file.path))
            handle.seekToEndOfFile()
            handle.write(Data(torn.utf8))
            handle.closeFile()
            // Readers never see it, even before the repair.
            #expect(try await HistoryLog(directory: directory).entries(matching: HistoryQuery(limit: nil)).count == 10)
            #expect(try await HistoryLog(directory: directory).job(id: 424242) == nil)
            let second = try await Support.makeFinishedJobs(client, keys: keys, count: 10, firstUser: 100)
            let events = ArchiverEventLog()
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys, archiverId: "torn"), events: events) { _ async throws in
                #expect(try await eventually { try await Support.isClean(client, keys: keys) })
            }
            #expect(events.repairedBytes == [torn.utf8.count])
            let ids = try Support.loggedIds(directory)
            #expect(ids.sorted() == (first + second).map(\.id).sorted())
            let text = try String(contentsOfFile: file.path, encoding: .utf8)
            #expect(!text.contains("424242"))
        }
    }

    @Test("an identity bound to another directory is refused; releasing it lets the new directory take over")
    func identityBinding() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let first = Support.temporaryDirectory()
            let second = Support.temporaryDirectory()
            defer {
                try? FileManager.default.removeItem(atPath: first)
                try? FileManager.default.removeItem(atPath: second)
            }
            try await Support.withArchiver(client, Support.configuration(first, keys: keys, archiverId: "same")) { archiver async throws in
                #expect(try await eventually { archiver.archiverId == "same" })
            }
            let jobs = try await Support.makeFinishedJobs(client, keys: keys, count: 20)
            let events = ArchiverEventLog()
            try await Support.withArchiver(client, Support.configuration(second, keys: keys, archiverId: "same"), events: events) { _ async throws in
                #expect(try await eventually { events.failures.count >= 2 })
                #expect(events.failures.first?.contains("belongs to another history directory") == true, "\(events.failures)")
                #expect(try await Support.leftInRedis(client, keys: keys).finished == 20, "nothing archived meanwhile")
                #expect(try await Archiver.releaseIdentity("same", client: client, keys: keys) == 0)
                #expect(try await eventually { try await Support.isClean(client, keys: keys) })
            }
            #expect(Set(try Support.loggedIds(second)) == Set(jobs.map(\.id)))
        }
    }

    @Test("an unwritable history directory: nothing is deleted, errors are reported; once writable, everything is archived once")
    func unwritableDirectory() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory("readonly")
            #expect(mkdir(directory, 0o755) == 0)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // Root ignores permission bits, so for root the directory is a read-only file system.
            let asRoot = geteuid() == 0
            if asRoot {
                guard Support.canMountTmpfs else {
                    Issue.record("running as root without the right to mount a tmpfs: cannot make a directory unwritable")
                    return
                }
                #expect(mount("tmpfs", directory, "tmpfs", UInt(MS_RDONLY), "size=4m") == 0)
            } else {
                #expect(chmod(directory, 0o555) == 0)
            }
            defer { if asRoot { umount2(directory, Int32(MNT_DETACH)) } }
            let jobs = try await Support.makeFinishedJobs(client, keys: keys, count: 150)
            let events = ArchiverEventLog()
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys), events: events) { _ async throws in
                #expect(try await eventually { events.failures.count >= 3 })
                #expect(events.failures.allSatisfy { $0.contains("cannot write the history log") }, "\(events.failures.prefix(2))")
                let left = try await Support.leftInRedis(client, keys: keys)
                #expect(left.finished == 150 && left.jobHashes == 150, "nothing deleted: \(left)")
                if asRoot {
                    #expect(mount("tmpfs", directory, "tmpfs", UInt(MS_REMOUNT), "size=4m") == 0)
                } else {
                    #expect(chmod(directory, 0o755) == 0)
                }
                #expect(try await eventually(timeout: .seconds(15)) { try await Support.isClean(client, keys: keys) })
            }
            let ids = try Support.loggedIds(directory)
            #expect(ids.count == 150 && Set(ids) == Set(jobs.map(\.id)))
            #expect(events.all.contains(.recovered))
        }
    }

    @Test("a full disk mid-run: the archiver stops, leaves no partial record, keeps the jobs in Redis; after space is freed all are archived once")
    func diskFull() async throws {
        // A full disk needs a small file system of its own: a tmpfs, which needs the right to mount.
        guard Support.canMountTmpfs else {
            Issue.record("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): the full-disk case is not tested")
            return
        }
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let directory = Support.temporaryDirectory("full")
            try #require(mkdir(directory, 0o755) == 0)
            try #require(mount("tmpfs", directory, "tmpfs", 0, "size=1m") == 0, "mount failed: errno \(errno)")
            defer {
                umount2(directory, Int32(MNT_DETACH))
                rmdir(directory)
            }
            // Fill the file system but for about 40 KiB.
            let filler = directory + "/filler"
            let fd = open(filler, O_WRONLY | O_CREAT, 0o644)
            let block = [UInt8](repeating: 0x41, count: 4096)
            var written = 0
            while block.withUnsafeBytes({ write(fd, $0.baseAddress, 4096) }) == 4096 { written += 4096 }
            #expect(ftruncate(fd, off_t(max(0, written - 40 * 1024))) == 0)
            close(fd)
            let jobs = try await Support.makeFinishedJobs(client, keys: keys, count: 400, payloadBytes: 600)
            let events = ArchiverEventLog()
            try await Support.withArchiver(client, Support.configuration(directory, keys: keys, batchSize: 20), events: events) { _ async throws in
                #expect(try await eventually(timeout: .seconds(20)) { events.diskFullFailures >= 2 })
                // Whatever the log holds is complete and not in Redis any more; the rest is all still in Redis.
                let logged = try Support.loggedIds(directory)
                let left = try await Support.leftInRedis(client, keys: keys)
                #expect(!logged.isEmpty && logged.count < 400)
                #expect(Support.duplicates(logged).isEmpty)
                #expect(left.finished + logged.count == 400 && left.jobHashes == left.finished, "log \(logged.count), Redis \(left)")
                #expect(left.claims <= 20)
                #expect(unlink(filler) == 0)
                #expect(try await eventually(timeout: .seconds(15)) { try await Support.isClean(client, keys: keys) })
            }
            let ids = try Support.loggedIds(directory)
            #expect(ids.count == 400 && Set(ids) == Set(jobs.map(\.id)), "duplicates: \(Support.duplicates(ids).prefix(5))")
        }
    }
}
