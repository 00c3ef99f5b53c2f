import Logging
import Synchronization

/// Logs a recurring failure once per episode, as swift-log's guidance asks
/// of a library (no repeated warnings): a warning when it starts, debug while
/// it lasts (every retry), info when it ends.
final class TroubleLog: Sendable {
    private let failing = Mutex<Set<String>>([])

    init() {}

    /// A failure of `what` (e.g. "claim"): a warning for the first of an
    /// episode, debug after that.
    func failed(_ what: String, _ message: @autoclosure () -> Logger.Message, logger: Logger, metadata: Logger.Metadata) {
        let first = failing.withLock { $0.insert(what).inserted }
        logger.log(level: first ? .warning : .debug, message(), metadata: metadata)
    }

    /// A success of `what`: ends its episode, if any, with one info line.
    func succeeded(_ what: String, logger: Logger, _ message: @autoclosure () -> Logger.Message) {
        let ended = failing.withLock { $0.remove(what) != nil }
        if ended { logger.info(message()) }
    }
}
