import Foundation
import Testing

@testable import ConveyorCLI

@Suite("CLI arguments")
struct CLIArgumentTests {
    @Test(
        "valid invocations parse",
        arguments: [
            ["schedule", "echo", "--user", "1", "--data", "{\"a\":1}", "--due", "+10s", "--auto-retry", "--retry-delay", "500", "--json"],
            ["schedule", "noop", "--user", "0", "--due", "2026-12-01T09:00:00Z", "--remove-delay", "1000"],
            ["cron", "noop", "*/2 * * * * *", "--user", "0"],
            ["cron", "echo", "0 9 * * MON-FRI", "--user", "3", "--tz", "Europe/Berlin"],
            ["jobs", "show", "12", "--json"],
            ["jobs", "list", "--type", "echo", "--user", "1", "--state", "pending", "--json"],
            ["jobs", "cancel", "5"],
            ["worker", "--concurrency", "20", "--redis", "redis://redis:6379"],
            ["worker", "--concurrency", "20", "--claim-ahead", "0"],
        ]
    )
    func valid(arguments: [String]) throws {
        try ConveyorCLI.validate(arguments: arguments)
    }

    @Test(
        "invalid invocations are rejected with a specific message",
        arguments: [
            (["schedule", "echo"], "--user"),
            (["schedule", "echo", "--user=-1"], "--user must be"),
            (["schedule", "echo", "--user", "1", "--due", "tomorrow"], "--due"),
            (["schedule", "echo", "--user", "1", "--retry-delay", "-5"], "--retry-delay"),
            (["cron", "echo", "61 * * * *", "--user", "1"], "minute"),
            (["cron", "echo", "0 9 * * *", "--user", "1", "--tz", "Mars/Olympus"], "--tz \"Mars/Olympus\": unknown time zone"),
            (["jobs", "list", "--state", "sleeping"], "sleeping"),
            (["worker", "--concurrency", "0"], "--concurrency"),
            (["worker", "--claim-ahead=-1"], "--claim-ahead must not be negative"),
            (["schedule", "echo", "--user", "1", "--partitions", "0"], "--partitions"),
        ]
    )
    func invalid(arguments: [String], expected: String) {
        expectRejected(arguments, mentioning: expected)
    }

    @Test("--due offsets and dates")
    func dueParsing() throws {
        let now = Date(timeIntervalSince1970: 1_000_000)
        #expect(try parseDue("+10s", now: now) == now.addingTimeInterval(10))
        #expect(try parseDue("+500ms", now: now) == now.addingTimeInterval(0.5))
        #expect(try parseDue("+5m", now: now) == now.addingTimeInterval(300))
        #expect(try parseDue("+2h", now: now) == now.addingTimeInterval(7200))
        #expect(try parseDue("+1d", now: now) == now.addingTimeInterval(86400))
        #expect(try parseDue("2026-12-01T09:00:00.250Z", now: now) == Date(timeIntervalSince1970: 1_796_115_600.25))
        #expect(throws: (any Error).self) { try parseDue("+10x", now: now) }
        #expect(throws: (any Error).self) { try parseDue("+-3s", now: now) }
    }
}

/// Expects the CLI to reject `arguments` with a message that mentions `expected`.
func expectRejected(_ arguments: [String], mentioning expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try ConveyorCLI.validate(arguments: arguments)
        Issue.record("\(arguments) was accepted", sourceLocation: sourceLocation)
    } catch {
        let message = ConveyorCommand.message(for: error)
        #expect(message.localizedCaseInsensitiveContains(expected), "\(message)", sourceLocation: sourceLocation)
    }
}
