import ConveyorChaos
import ConveyorTestSupport
import Foundation
import Testing

/// The short versions of every chaos scenario (issue 10): a few hundred jobs, one or two faults,
/// real redis-server and `conveyor worker` processes. Each asserts the promise: every
/// acknowledged job ran, nothing is left pending or running. `make chaos` runs the full ones.
@Suite("Chaos scenarios (short)", .serialized)
struct ChaosScenarioTests {
    static func run(_ scenario: ChaosScenario) async throws -> ChaosResult {
        let seed = UInt64(ProcessInfo.processInfo.environment["CHAOS_SEED"] ?? "") ?? 1
        let settings = ChaosSettings(scale: .short, seed: seed, conveyorPath: ChaosSettings.conveyorNextTo(CommandLine.arguments[0]))
        let result = try await scenario.run(settings)
        print("\(ChaosResult.markdownHeader)\n\(result.markdownRow)")
        return result
    }

    static func expectEveryJobRan(_ result: ChaosResult, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.jobsScheduled > 0, "\(result.markdownRow)", sourceLocation: sourceLocation)
        #expect(result.faults > 0, "no fault was injected: \(result.markdownRow)", sourceLocation: sourceLocation)
        #expect(result.neverRan == 0, "\(result.markdownRow)", sourceLocation: sourceLocation)
        #expect(result.leftPendingOrRunning == 0, "\(result.markdownRow)", sourceLocation: sourceLocation)
    }

    @Test("2 worker processes, one SIGKILLed and restarted twice: every job runs, none is left")
    func workerKill() async throws {
        Self.expectEveryJobRan(try await Self.run(.workerKill))
    }

    @Test("short jobs claimed ahead, a worker holding them SIGKILLed twice: every job runs, none is left")
    func workerKillShortJobs() async throws {
        Self.expectEveryJobRan(try await Self.run(.workerKillShortJobs))
    }

    @Test("redis-server SIGKILLed and restarted twice (AOF always): every acknowledged job runs, none is left")
    func redisRestart() async throws {
        Self.expectEveryJobRan(try await Self.run(.redisRestart))
    }

    @Test("redis-server frozen longer than the lease: no false worker lost, every job runs")
    func redisFreeze() async throws {
        let result = try await Self.run(.redisFreeze)
        Self.expectEveryJobRan(result)
        #expect(result.workerLost == 0, "\(result.markdownRow)")
    }

    @Test("workers behind a proxy that drops, stalls and resets: every job runs, none is left")
    func proxyFaults() async throws {
        Self.expectEveryJobRan(try await Self.run(.proxyFaults))
    }

    @Test("maxmemory with noeviction: a clear OOM error, nothing acknowledged lost, scheduling works again once the archiver frees memory")
    func maxmemory() async throws {
        let result = try await Self.run(.maxmemory)
        Self.expectEveryJobRan(result)
        #expect(result.notes.contains { $0.contains("refused with: Conveyor redisOutOfMemory: scheduleJobs failed: Redis is out of memory") }, "\(result.notes)")
        #expect(result.notes.contains { $0.hasPrefix("scheduling worked again") }, "\(result.notes)")
    }

    @Test("archiver SIGKILLed 3 times while jobs finish: each job in the history exactly once, nothing left in Redis")
    func archiverKill() async throws {
        let result = try await Self.run(.archiverKill)
        Self.expectEveryJobRan(result)
        #expect(result.notes.contains { $0.hasPrefix("history: \(result.jobsScheduled) jobs, 0 written twice, 0 missing, 0 unreadable") }, "\(result.notes)")
    }
}
