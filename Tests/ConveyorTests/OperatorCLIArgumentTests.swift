import Foundation
import Testing

@testable import ConveyorCLI

@Suite("CLI arguments of stats and dashboard")
struct OperatorCLIArgumentTests {
    static let tokenFile: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-token-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: path, contents: Data("0123456789abcdef-secret\n".utf8))
        return path
    }()

    static let shortTokenFile: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-token-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: path, contents: Data("short\n".utf8))
        return path
    }()

    @Test("valid invocations parse")
    func valid() throws {
        for arguments in [
            ["stats"], ["stats", "--json"], ["stats", "--watch", "--interval", "0.5", "--minutes", "60"],
            ["dashboard", "--port", "8080"], ["dashboard", "--port", "0", "--bind", "::1"],
            ["dashboard", "--port", "9000", "--bind", "0.0.0.0", "--token-file", Self.tokenFile, "--history-dir", "/tmp"],
        ] {
            try ConveyorCLI.validate(arguments: arguments)
        }
    }

    @Test("invalid invocations are rejected with a specific message")
    func invalid() {
        expectRejected(["stats", "--interval", "0"], mentioning: "--interval")
        expectRejected(["stats", "--minutes", "61"], mentioning: "--minutes")
        expectRejected(["stats", "--type-scan-limit", "0"], mentioning: "--type-scan-limit")
        expectRejected(["dashboard", "--bind", "0.0.0.0"], mentioning: "--token-file")
        expectRejected(["dashboard", "--port", "70000"], mentioning: "port")
        expectRejected(["dashboard", "--token-file", "/nonexistent/token"], mentioning: "cannot read")
        expectRejected(["dashboard", "--token-file", Self.shortTokenFile], mentioning: "at least 16")
        expectRejected(["dashboard", "--page-size", "0"], mentioning: "pageSize")
    }
}
