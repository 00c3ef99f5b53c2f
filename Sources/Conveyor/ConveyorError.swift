/// An error from Conveyor's job layer.
///
/// One struct with an extensible ``Code``. ``description`` names what is wrong
/// and why, but never prints a job's payload.
public struct ConveyorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// An argument is out of range or malformed (negative delay, invalid date, ...).
        public static let invalidArgument = Code("invalidArgument")
        /// No job type of that name is registered.
        public static let unknownJobType = Code("unknownJobType")
        /// The job's data could not be encoded, or stored data could not be decoded.
        public static let invalidData = Code("invalidData")
        /// The encoded data is larger than the configured limit.
        public static let payloadTooLarge = Code("payloadTooLarge")
        /// The cron expression or time zone is invalid.
        public static let invalidCron = Code("invalidCron")
        /// No job has that id (it never existed, or it was archived).
        public static let jobNotFound = Code("jobNotFound")
        /// The job is in a state that does not allow the operation.
        public static let invalidState = Code("invalidState")
        /// Redis failed or replied with something unexpected.
        public static let redis = Code("redis")
        /// Redis is at `maxmemory` with `noeviction` and refused a write; nothing
        /// was written. Workers and the archiver keep running (their scripts may
        /// use memory past the limit) and free memory as jobs finish and are archived.
        public static let redisOutOfMemory = Code("redisOutOfMemory")
        /// The namespace in Redis was set up with another partition count or
        /// layout version than this process uses (``ConveyorKeys/verifyLayout(client:)``).
        public static let layoutMismatch = Code("layoutMismatch")
        /// The jobs were scheduled on the master, but fewer replicas than
        /// ``JobScheduler/Configuration/replicaAcknowledgements`` acknowledged
        /// them in time: a failover before they replicate loses them. Scheduling
        /// them again replaces them (the replace rule), so a retry adds no copy.
        public static let notReplicated = Code("notReplicated")

        public var description: String { name }
    }

    /// What went wrong.
    public var code: Code
    /// A readable explanation without payloads.
    public var message: String
    /// The Redis error behind a ``Code/redis`` error.
    public var redisError: RedisError?

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    init(_ error: RedisError) {
        self = ConveyorError(redisReply: error.description)
        self.redisError = error
    }

    /// A Redis error reply (`what` names the call): ``Code/redisOutOfMemory``
    /// for Redis's OOM refusal, else ``Code/redis``.
    init(redisReply message: String, what: String? = nil) {
        let prefix = what.map { "\($0) failed: " } ?? ""
        if message.contains("OOM command not allowed") {
            self.init(
                .redisOutOfMemory,
                prefix + "Redis is out of memory (maxmemory reached, noeviction); nothing was written. "
                    + "Memory frees as workers finish jobs and the archiver removes them; or raise maxmemory. (\(message))"
            )
        } else {
            self.init(.redis, prefix + message)
        }
    }

    public var description: String { "Conveyor \(code): \(message)" }
}
