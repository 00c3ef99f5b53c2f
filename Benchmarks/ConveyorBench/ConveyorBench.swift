import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// The entry point. `--nio-executor` must act before any task is enqueued on
/// Swift's global executor, so it is handled here, before argument parsing
/// (``RedisBenchmarkCommand`` declares the flag for `--help` and validation).
@main
enum BenchmarkMain {
    static func main() async {
        if CommandLine.arguments.contains("--nio-executor") {
            guard NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() else {
                FileHandle.standardError.write(Data("error: could not install NIO's event loops as the global executor\n".utf8))
                exit(1)
            }
        }
        await ConveyorBench.main()
    }
}

/// `conveyor-bench`: benchmark executables for Conveyor, run by `make bench`.
///
/// `make bench BENCH_ARGS="redis --repeat 3"` passes its arguments through.
/// Results and how to read them are in `docs/benchmarks.md`.
struct ConveyorBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor-bench",
        abstract: "Benchmarks for Conveyor; results are documented in docs/benchmarks.md.",
        subcommands: [RedisBenchmarkCommand.self],
        defaultSubcommand: RedisBenchmarkCommand.self
    )
}

/// A failure of the benchmark harness itself (not of the code measured).
struct BenchmarkError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}
