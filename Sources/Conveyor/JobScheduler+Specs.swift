import ConveyorRedis
import Foundation

/// Turning a typed or untyped configuration into a validated ``JobSpec``:
/// every check runs before anything is sent, so bad input writes nothing.
extension JobScheduler {
    static func cronSchedule(_ expression: String, timeZone: String) throws(ConveyorError) -> CronSchedule {
        guard TimeZone(identifier: timeZone) != nil else {
            throw ConveyorError(.invalidCron, "unknown time zone \"\(timeZone)\": expected an IANA name such as UTC or Europe/Berlin")
        }
        do {
            return try CronSchedule(expression, timeZoneIdentifier: timeZone)
        } catch {
            throw ConveyorError(.invalidCron, error.description)
        }
    }

    /// - Parameter encoder: One encoder for a whole bulk call (one per job otherwise).
    func spec<J: Job>(_ config: WorkerJobConfig<J>, cron: CronSchedule?, encoder: JSONEncoder = .conveyor) throws(ConveyorError) -> JobSpec {
        let data: Data
        do {
            data = try encoder.encode(config.data)
        } catch {
            throw ConveyorError(.invalidData, "data for \(J.typeName) does not encode as JSON: \(error)")
        }
        return try validated(
            JobSpec(
                type: J.typeName, userId: config.userId, dataJSON: String(decoding: data, as: UTF8.self), due: config.due,
                delay: config.delay, cron: cron, autoRescheduleOnFailure: config.autoRescheduleOnFailure,
                autoRescheduleOnFailureDelay: config.autoRescheduleOnFailureDelay,
                maxAttempts: config.autoRescheduleOnFailureMaxAttempts, backoff: config.autoRescheduleOnFailureBackoff,
                removeDelay: config.removeDelay
            ))
    }

    func spec(_ config: UntypedJobConfig, cron: CronSchedule?) throws(ConveyorError) -> JobSpec {
        if let known = configuration.knownJobTypes, !known.contains(config.type) {
            throw ConveyorError(
                .unknownJobType,
                "unknown job type \"\(config.type)\"; known types: \(known.sorted().joined(separator: ", "))"
            )
        }
        let dataJSON = config.dataJSON?.isEmpty == true ? nil : config.dataJSON
        // Sizes first, then parsing: checked, then stored as written, since re-encoding
        // would change numbers such as 12345678901234567890 or -0.0 that an Input may read exactly.
        let spec = try validated(
            JobSpec(
                type: config.type, userId: config.userId, dataJSON: dataJSON, due: config.due, delay: config.delay, cron: cron,
                autoRescheduleOnFailure: config.autoRescheduleOnFailure,
                autoRescheduleOnFailureDelay: config.autoRescheduleOnFailureDelay,
                maxAttempts: config.autoRescheduleOnFailureMaxAttempts, backoff: config.autoRescheduleOnFailureBackoff,
                removeDelay: config.removeDelay
            ))
        if let dataJSON, (try? JSONValue(jsonText: dataJSON)) == nil {
            throw ConveyorError(.invalidData, "data for \(config.type) is not valid JSON")
        }
        try configuration.inputCheck?(config.type, dataJSON)
        return spec
    }

    func validated(_ spec: JobSpec) throws(ConveyorError) -> JobSpec {
        guard !spec.type.isEmpty, !spec.type.utf8.contains(UInt8(ascii: ":")), spec.type.utf8.count <= 200 else {
            throw ConveyorError(.invalidArgument, "job type \"\(spec.type)\" must be 1–200 bytes without ':'")
        }
        // Lua numbers are doubles: integers stay exact up to 2^53, and delays
        // are added to `now` in the scripts, so they get a tighter bound.
        let maxUserId = 9_007_199_254_740_991
        let maxDelay = 100 * 365 * 86_400_000
        guard (0...maxUserId).contains(spec.userId) else {
            throw ConveyorError(.invalidArgument, "userId must be between 0 (system) and 2^53 − 1, got \(spec.userId)")
        }
        guard (0...maxDelay).contains(spec.autoRescheduleOnFailureDelay) else {
            throw ConveyorError(
                .invalidArgument, "autoRescheduleOnFailureDelay must be between 0 and 100 years in ms, got \(spec.autoRescheduleOnFailureDelay) ms")
        }
        guard (0...maxDelay).contains(spec.removeDelay) else {
            throw ConveyorError(.invalidArgument, "removeDelay must be between 0 and 100 years in ms, got \(spec.removeDelay) ms")
        }
        if let delay = spec.delay, !(0...maxDelay).contains(delay.wholeMilliseconds) {
            throw ConveyorError(.invalidArgument, "delay must be between 0 and 100 years, got \(delay)")
        }
        if let maxAttempts = spec.maxAttempts, maxAttempts < 1 {
            throw ConveyorError(.invalidArgument, "autoRescheduleOnFailureMaxAttempts must be at least 1, got \(maxAttempts)")
        }
        if case .exponential(let maxBackoff) = spec.backoff, !(1...maxDelay).contains(maxBackoff.wholeMilliseconds) {
            throw ConveyorError(.invalidArgument, "the exponential backoff's maxDelay must be between 1 ms and 100 years, got \(maxBackoff)")
        }
        if let due = spec.due {
            let seconds = due.timeIntervalSince1970
            // Year 1970 through 9999: what ms-since-epoch scores and ISO 8601 both carry.
            guard seconds.isFinite, seconds >= 0, seconds < 253_402_300_800 else {
                throw ConveyorError(.invalidArgument, "due \(seconds.isFinite ? "\(due)" : "\(seconds)") is not a valid date between 1970 and 9999")
            }
        }
        if let data = spec.dataJSON, data.utf8.count > configuration.maxPayloadBytes {
            throw ConveyorError(
                .payloadTooLarge,
                "data for \(spec.type) is \(data.utf8.count) bytes; the limit is \(configuration.maxPayloadBytes)"
            )
        }
        let hostNow = configuration.testHostClock?() ?? Date()
        if let cron = spec.cron, cron.next(after: max(spec.due ?? hostNow, hostNow)) == nil {
            throw ConveyorError(.invalidCron, "cron expression \"\(cron.expression)\" never fires after \((spec.due ?? hostNow).iso8601Milliseconds)")
        }
        return spec
    }
}
