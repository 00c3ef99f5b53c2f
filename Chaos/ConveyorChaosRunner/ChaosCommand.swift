import ArgumentParser
import ConveyorChaos
import Foundation

/// `conveyor-chaos`: runs the fault-injection scenarios and prints their Markdown table.
@main
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor-chaos",
        abstract: "Run Conveyor's fault-injection scenarios (real redis-server and worker processes on 127.0.0.1) and print a Markdown table."
    )

    @Option(name: .long, parsing: .upToNextOption, help: "Scenarios to run (default: all): \(ChaosScenario.allCases.map(\.rawValue).joined(separator: ", ")).")
    var only: [String] = []
    @Option(name: .long, help: "Seed of every random choice; the same seed repeats the same decisions.")
    var seed: UInt64 = 1
    @Flag(name: .long, help: "The short versions the test suite runs.")
    var short = false
    @Option(name: .long, help: "The conveyor binary (default: next to this one).")
    var conveyor: String?
    @Flag(name: .customLong("keep-files"), help: "Keep each scenario's directory (Redis data, process logs, execution log).")
    var keepFiles = false

    func validate() throws {
        for name in only where ChaosScenario(rawValue: name) == nil {
            throw ValidationError("unknown scenario \(name); known: \(ChaosScenario.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        let binary = conveyor ?? ChaosSettings.conveyorNextTo(CommandLine.arguments[0])
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ValidationError("no conveyor binary at \(binary); build it (swift build --product conveyor) or pass --conveyor")
        }
        let settings = ChaosSettings(scale: short ? .short : .full, seed: seed, conveyorPath: binary, keepFiles: keepFiles)
        let scenarios = only.isEmpty ? ChaosScenario.allCases : only.compactMap(ChaosScenario.init(rawValue:))
        var rows: [String] = []
        for scenario in scenarios {
            FileHandle.standardError.write(Data("running \(scenario.rawValue) (\(settings.scale.rawValue), seed \(seed))...\n".utf8))
            do {
                let result = try await scenario.run(settings)
                FileHandle.standardError.write(Data("\(result.markdownRow)\n".utf8))
                rows.append(result.markdownRow)
            } catch {
                rows.append("| \(scenario.rawValue) | failed to run: \(error) |")
            }
        }
        print(ChaosResult.markdownHeader)
        rows.forEach { print($0) }
        if keepFiles { print("\nfiles kept in \(settings.workDirectory)") }
    }
}
