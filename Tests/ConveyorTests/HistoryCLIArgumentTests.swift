import Foundation
import Testing

@testable import ConveyorCLI

@Suite("archiver and history arguments")
struct HistoryCLIArgumentTests {
    @Test(
        "valid invocations parse",
        arguments: [
            ["archiver", "--history-dir", "/tmp/h"],
            ["archiver", "--history-dir", "/tmp/h", "--interval", "0.01"],
            ["archiver", "--history-dir", "/tmp/h", "--interval", "0.5", "--min-interval", "0.1", "--batch-size", "1000", "--max-file-size", "64M", "--archiver-id", "host-1"],
            ["archiver", "--release", "host-1"],
            ["archiver", "--claims"],
            ["archiver", "--history-dir", "/tmp/h", "--no-compress", "--retain-days", "30", "--retain-size", "10G"],
            ["archiver", "--history-dir", "/tmp/h", "--status"],
            ["archiver", "--history-dir", "/tmp/h", "--maintain", "--retain-size", "512M"],
            ["history", "--history-dir", "/tmp/h", "--since", "2026-11-29", "--until", "2026-11-30", "--all", "--oldest-first", "--json"],
            ["history", "--history-dir", "/tmp/h"],
            ["history", "--history-dir", "/tmp/h", "--id", "7", "--type", "echo", "--user", "3", "--since", "2026-11-29",
             "--until", "2026-11-30T12:00:00Z", "--success", "false", "--limit", "10", "--json"],
            ["history", "--history-dir", "/tmp/h", "--chain", "12"],
        ]
    )
    func valid(arguments: [String]) throws {
        try ConveyorCLI.validate(arguments: arguments)
    }

    @Test(
        "invalid invocations are rejected with a specific message",
        arguments: [
            (["archiver", "--history-dir", "/tmp/h", "--batch-size", "0"], "--batch-size"),
            (["archiver", "--history-dir", "/tmp/h", "--interval", "0"], "--interval"),
            (["archiver", "--history-dir", "/tmp/h", "--min-interval", "-1"], "--min-interval"),
            (["archiver", "--history-dir", "/tmp/h", "--max-file-size", "12X"], "--max-file-size"),
            (["archiver", "--history-dir", "/tmp/h", "--retain-size", "lots"], "--retain-size"),
            (["archiver", "--history-dir", "/tmp/h", "--retain-days", "0"], "--retain-days"),
            (["history", "--history-dir", "/tmp/h", "--since", "yesterday"], "--since"),
            (["history", "--history-dir", "/tmp/h", "--success", "maybe"], "success"),
            (["history", "--history-dir", "/tmp/h", "--limit", "0"], "--limit"),
        ]
    )
    func invalid(arguments: [String], expected: String) {
        expectRejected(arguments, mentioning: expected)
    }

    @Test("--max-file-size units")
    func sizes() throws {
        #expect(try ArchiverCommand.parseSize("4096") == 4096)
        #expect(try ArchiverCommand.parseSize("512K") == 512 << 10)
        #expect(try ArchiverCommand.parseSize("128m") == 128 << 20)
        #expect(try ArchiverCommand.parseSize("1G") == 1 << 30)
    }
}
