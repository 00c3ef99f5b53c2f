@testable import Conveyor
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

@Suite("Job hash fields and job logs")
struct WorkerJobFieldsTests {
    private static func fields(_ pairs: [(String, String)]) -> [RESPValue] {
        pairs.flatMap { [RESPValue.bulkString(ByteBuffer(string: $0.0)), .bulkString(ByteBuffer(string: $0.1))] }
    }

    @Test("raw hash fields parse in any order, with split d and r parts joined by part number")
    func rawFields() throws {
        let data = "\"" + String(repeating: "é", count: 70) + "\""  // 142 bytes: parts split a character
        let bytes = Array(data.utf8)
        // Parts split inside a character are not valid UTF-8 alone, so they go in as raw bytes,
        // last part first.
        var raw: [RESPValue] = []
        for (index, start) in stride(from: 0, to: bytes.count, by: 64).enumerated().reversed() {
            raw += [.bulkString(ByteBuffer(string: index == 0 ? "d" : "d\(index + 1)")), .bulkString(ByteBuffer(bytes: bytes[start..<min(start + 64, bytes.count)]))]
        }
        #expect(raw.count == 6)
        raw += Self.fields([
            ("r2", "89]"), ("ca", "1764380000000"), ("u", "-42"), ("t", "echo"), ("du", "1764380000500"), ("r", "[1234567"),
            ("st", "1764380001000"), ("w", "host-1"), ("ok", "1"), ("fi", "1764380002000"), ("a", "3"), ("ar", "1"), ("ard", "250"),
            ("rmd", "60000"), ("rf", "17"), ("cr", "*/5 * * * * *"), ("tz", "Europe/Paris"), ("zz", "ignored"),
        ])
        let job = try #require(WorkerJob(id: 9, hashFields: raw))
        #expect(job.dataJSON == data)
        #expect(job.resultJSON == "[123456789]")
        #expect(job.type == "echo" && job.userId == -42 && job.attempt == 3 && job.workerId == "host-1")
        #expect(job.createdAt == Date(milliseconds: 1_764_380_000_000) && job.due == Date(milliseconds: 1_764_380_000_500))
        #expect(job.started == Date(milliseconds: 1_764_380_001_000) && job.finished == Date(milliseconds: 1_764_380_002_000))
        #expect(job.success == true && job.autoRescheduleOnFailure && job.autoRescheduleOnFailureDelay == 250)
        #expect(job.removeDelay == 60_000 && job.rescheduledFromJob == 17)
        #expect(job.cronSchedule == "*/5 * * * * *" && job.cronTimeZone == "Europe/Paris")
    }

    @Test("a field name read from its bytes names its JobField, and nothing else does")
    func fieldNamesFromBytes() {
        for field in JobField.allCases {
            #expect(JobField.named(ByteBuffer(string: field.rawValue).readableBytesView) == field, "\(field)")
        }
        // Parts of split values, look-alikes and names too long to be a field.
        for name in ["", "d2", "r10", "tt", "T", "\0t", "t\0", "\0\0t", "rmdx", "abcdefgh", "ardd", "é"] {
            #expect(JobField.named(ByteBuffer(string: name).readableBytesView) == nil, "\(name.utf8.map { $0 })")
        }
    }

    @Test("the due time: ca + dd; an absolute du of older jobs; else ca")
    func dueTime() throws {
        let offset = try #require(WorkerJob(id: 1, hashFields: Self.fields([("t", "noop"), ("u", "1"), ("ca", "1000"), ("dd", "3600000")])))
        #expect(offset.due == Date(milliseconds: 3_601_000))
        let past = try #require(WorkerJob(id: 1, hashFields: Self.fields([("t", "noop"), ("u", "1"), ("ca", "1000"), ("dd", "-500")])))
        #expect(past.due == Date(milliseconds: 500))
        let old = try #require(WorkerJob(id: 1, hashFields: Self.fields([("t", "noop"), ("u", "1"), ("ca", "1000"), ("du", "9000")])))
        #expect(old.due == Date(milliseconds: 9_000))
    }

    @Test("a hash without t, u or ca is not a job; defaults apply to absent fields")
    func missingFields() throws {
        #expect(WorkerJob(id: 1, hashFields: Self.fields([("t", "noop"), ("u", "1")])) == nil)
        #expect(WorkerJob(id: 1, hashFields: Self.fields([("t", "noop"), ("ca", "5")])) == nil)
        #expect(WorkerJob(id: 1, hashFields: Self.fields([("u", "1"), ("ca", "5")])) == nil)
        #expect(WorkerJob(id: 1, hashFields: Self.fields([("t", "noop"), ("u", "x1"), ("ca", "5")])) == nil)
        let job = try #require(WorkerJob(id: 1, hashFields: Self.fields([("t", "noop"), ("u", "0"), ("ca", "5")])))
        #expect(job.due == job.createdAt && job.attempt == 1 && job.dataJSON == nil && job.success == nil && job.state == .pending)
    }

    @Test("a job's log messages carry its id, type and user, and what the job adds; the base handler's level applies")
    func jobLogs() throws {
        let sink = LogSink()
        var base = Logger(label: "test") { _ in CapturingLogHandler(sink: sink) }
        base.logLevel = .info
        base[metadataKey: "app"] = "demo"
        let job = try #require(WorkerJob(id: 12, hashFields: Self.fields([("t", "echo"), ("u", "5"), ("ca", "1")])))
        var log = base
        log.handler = JobLogHandler(base: base.handler, job: job)
        log.debug("dropped")
        log.info("first", metadata: ["step": "1"])
        log[metadataKey: "attempt"] = "2"
        log.warning("second")
        #expect(log[metadataKey: "conveyor.job.id"]?.description == "12")
        #expect(log[metadataKey: "app"] == "demo")
        let events = sink.events.withLock { $0 }
        #expect(events.map(\.message) == ["first", "second"])
        #expect(events[0].metadata.mapValues(\.description) == ["conveyor.job.id": "12", "conveyor.job.type": "echo", "conveyor.user.id": "5", "step": "1", "app": "demo"])
        #expect(events[1].metadata.mapValues(\.description) == ["conveyor.job.id": "12", "conveyor.job.type": "echo", "conveyor.user.id": "5", "attempt": "2", "app": "demo"])
    }
}

private final class LogSink: Sendable {
    let events = Mutex<[(message: String, metadata: Logger.Metadata)]>([])
}

/// Records what it logs, with its own metadata merged in as real handlers do.
private struct CapturingLogHandler: LogHandler {
    let sink: LogSink
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        sink.events.withLock { $0.append((event.message.description, merged)) }
    }
}
