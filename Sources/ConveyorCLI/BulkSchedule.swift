import ArgumentParser
import Conveyor
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `conveyor schedule --from FILE`: JSON lines, one job per line.
///
/// The whole input is read and every line checked before anything is sent,
/// so a bad line anywhere means nothing is written. The jobs are then sent
/// in batches of ``batchSize`` (one `scheduleJobs` call each, which the
/// scheduler pipelines); if Redis fails during a batch, the batches before it
/// are scheduled and the error says which lines were.
struct BulkSchedule {
    /// Jobs per `scheduleJobs` call; progress is reported after each.
    static let batchSize = 1000
    /// Most jobs one invocation takes: the input is held in memory while it is checked.
    static let maxJobs = 1_000_000
    /// Most bad lines listed before the rest are only counted.
    static let maxReported = 20

    var source: String
    var json: Bool

    /// The source as named in messages.
    var sourceName: String { source == "-" ? "standard input" : source }

    func run(_ scheduler: JobScheduler) async throws {
        let input = try await Self.read(source)
        let jobs = try check(input, configuration: scheduler.configuration)
        var progress = Progress(total: jobs.count, terminal: isatty(STDERR_FILENO) == 1)
        var scheduled = 0
        // Batches that reached too few replicas (--replica-acks): reported at the end.
        var notReplicated = 0
        var fewest: JobScheduler.Replication?
        for start in stride(from: 0, to: jobs.count, by: Self.batchSize) {
            let batch = jobs[start..<min(start + Self.batchSize, jobs.count)]
            let created: [WorkerJob]
            let replication: JobScheduler.Replication?
            do {
                let result = try await scheduler.scheduleJobsReportingReplication(batch.map(\.config))
                created = result.jobs
                replication = result.replication
            } catch {
                progress.abandon()
                throw CLIError(failure(error, batch: batch, scheduled: scheduled))
            }
            scheduled += created.count
            if let replication, !replication.isReplicated {
                notReplicated += created.count
                if replication.acknowledged < fewest?.acknowledged ?? Int.max { fewest = replication }
            }
            if json {
                // Unbuffered: a consumer sees each batch's jobs as they are scheduled.
                FileHandle.standardOutput.write(Data(created.map { ReplicaOptions.jsonLine($0, replication) + "\n" }.joined().utf8))
            }
            progress.update(scheduled)
        }
        progress.finish()
        if !json { print("scheduled \(scheduled) job\(scheduled == 1 ? "" : "s") from \(sourceName)") }
        if let fewest {
            let timeoutMs = Int(scheduler.configuration.replicaTimeout / .milliseconds(1))
            throw ReplicaOptions.shortfall(notReplicated, fewest, timeoutMs: timeoutMs)
        }
    }

    /// The jobs of `input` with their line numbers; on bad lines, each is
    /// reported on standard error and the command exits 2.
    func check(_ input: [UInt8], configuration: JobScheduler.Configuration) throws -> [(line: Int, config: UntypedJobConfig)] {
        var jobs: [(line: Int, config: UntypedJobConfig)] = []
        var bad: [String] = []
        var badCount = 0
        var lineNumber = 0
        for var line in input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if lineNumber == 1, line.starts(with: [0xEF, 0xBB, 0xBF]) { line = line.dropFirst(3) }  // a UTF-8 byte order mark
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            guard jobs.count < Self.maxJobs else {
                Self.write("error: \(sourceName) line \(lineNumber): more than \(Self.maxJobs) jobs; split the input")
                Self.write("nothing was scheduled")
                throw ExitCode(CLIExit.usage)
            }
            do {
                jobs.append((lineNumber, try JobLine.config(line, configuration: configuration)))
            } catch {
                badCount += 1
                if bad.count < Self.maxReported { bad.append("error: \(sourceName) line \(lineNumber): \(CLIExit.line(error))") }
            }
        }
        guard badCount == 0 else {
            bad.forEach(Self.write)
            if badCount > bad.count { Self.write("error: \(badCount - bad.count) more bad lines") }
            Self.write("nothing was scheduled: \(badCount) bad line\(badCount == 1 ? "" : "s") in \(sourceName)")
            throw ExitCode(CLIExit.usage)
        }
        return jobs
    }

    /// What was and was not written when the batch of `batch` failed.
    func failure(_ error: any Error, batch: ArraySlice<(line: Int, config: UntypedJobConfig)>, scheduled: Int) -> String {
        let first = batch.first!.line
        let last = batch.last!.line
        let done = scheduled == 0 ? "no job was scheduled" : "the \(scheduled) jobs before line \(first) were scheduled"
        // The scheduler checks a whole call's input before sending any of it.
        let sent = (error as? ConveyorError).map { [.redis, .redisOutOfMemory].contains($0.code) } ?? true
        let batchState = sent ? "lines \(first)–\(last) may be partly scheduled" : "nothing of lines \(first)–\(last) was written"
        return "\(sourceName) lines \(first)–\(last): \(CLIExit.line(error)); \(done), \(batchState), later lines were not sent"
    }

    /// Reads all of `source` (`-`: standard input) on a thread of its own,
    /// so a slow pipe never holds a thread of the cooperative pool.
    static func read(_ source: String) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8], any Error>) in
            Thread {
                continuation.resume(
                    with: Result {
                        let handle = source == "-" ? FileHandle.standardInput : try FileHandle(forReadingFrom: URL(fileURLWithPath: source))
                        return [UInt8](try handle.readToEnd() ?? Data())
                    }.mapError { error in
                        CLIError("--from \(source): cannot read: \(error.localizedDescription)") as any Error
                    }
                )
            }
            .start()
        }
    }

    static func write(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Progress on standard error: a bar redrawn in place on a terminal,
    /// otherwise a plain line after each batch.
    struct Progress {
        let total: Int
        let terminal: Bool
        private var drawn = false

        init(total: Int, terminal: Bool) {
            self.total = total
            self.terminal = terminal
        }

        mutating func update(_ done: Int) {
            guard terminal else {
                BulkSchedule.write("scheduled \(done)/\(total) jobs")
                return
            }
            let width = 30
            let filled = total == 0 ? width : width * done / total
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total) jobs".utf8))
            drawn = true
        }

        /// Ends the bar's line.
        mutating func finish() {
            if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
            drawn = false
        }

        /// Ends the bar's line so an error starts on a line of its own.
        mutating func abandon() { finish() }
    }
}
