import ArgumentParser
import Conveyor
import Foundation

/// A failure while running a command whose arguments were fine (a job that
/// cannot be cancelled, no Redis server): one line on standard error, exit 1.
/// Bad arguments throw ArgumentParser's `ValidationError` instead: the message
/// with the usage text, exit 2.
struct CLIError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

/// The exit statuses of every command: 0 success, 1 failure, 2 bad usage.
enum CLIExit {
    static let failure: Int32 = 1
    static let usage: Int32 = 2

    /// Reports `error` as its kind asks and exits: help and `--version` as
    /// ArgumentParser does (status 0), bad usage with the usage text (2),
    /// anything else in one line (1).
    static func exit(for error: any Error) -> Never {
        let code = ConveyorCommand.exitCode(for: error)
        if code == .success || error is ExitCode {
            ConveyorCommand.exit(withError: error)
        }
        if code == .validationFailure {
            write(ConveyorCommand.fullMessage(for: error))
            Foundation.exit(usage)
        }
        write("error: " + line(error))
        Foundation.exit(failure)
    }

    /// One line: a job payload never appears in Conveyor's messages, and a
    /// multi-line description is joined.
    static func line(_ error: any Error) -> String {
        let text = (error as? ConveyorError)?.message ?? String(describing: error)
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    private static func write(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }
}
