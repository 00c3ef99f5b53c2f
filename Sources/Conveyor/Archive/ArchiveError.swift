#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An error of the archiver or the history log: the file system refused, or
/// an archiver identity is taken.
///
/// ``description`` names the operation, the path and the system's reason;
/// it never prints a job's payload.
public struct ArchiveError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// A file operation failed (permission denied, disk full, I/O error, ...).
        public static let io = Code("io")
        /// Another running archiver holds this identity (its lock file is locked).
        public static let identityInUse = Code("identityInUse")
        /// The identity belongs to another history directory (Redis holds another token for it).
        public static let identityMismatch = Code("identityMismatch")
        /// A setting is out of range.
        public static let invalidArgument = Code("invalidArgument")

        public var description: String { name }
    }

    /// What went wrong.
    public var code: Code
    /// A readable explanation.
    public var message: String
    /// The `errno` behind an ``Code/io`` error.
    public var errorNumber: Int32?

    /// Creates an error.
    public init(_ code: Code, _ message: String, errorNumber: Int32? = nil) {
        self.code = code
        self.message = message
        self.errorNumber = errorNumber
    }

    /// An ``Code/io`` error for `operation` on `path` from the current `errno`.
    static func io(_ operation: String, _ path: String, errno number: Int32 = errno) -> ArchiveError {
        ArchiveError(.io, "\(operation) \(path): \(String(cString: strerror(number)))", errorNumber: number)
    }

    /// Whether the disk is full (`ENOSPC`, `EDQUOT`).
    public var isDiskFull: Bool { errorNumber == ENOSPC || errorNumber == EDQUOT }

    public var description: String { "Conveyor archive \(code): \(message)" }
}
