import Foundation
import NIOCore

/// A job as stored: what was scheduled, and what happened to it.
///
/// Encodes to JSON with the API field names (`id`, `type`, `userId`, `data`,
/// `due`, ...), dates as ISO 8601 UTC with milliseconds; this is the format of
/// `--json` output and of the history log.
public struct WorkerJob: Sendable, Hashable {
    /// Unique, increasing within a partition; `id % partitionCount` is the partition.
    public var id: Int
    /// The stored job type name.
    public var type: String
    /// The user the job is for; 0 for system-level jobs.
    public var userId: Int
    /// The job's input as JSON text, as stored; `nil` is JSON `null`.
    public var dataJSON: String?
    /// When the job may start.
    public var due: Date
    /// When a worker claimed it.
    public var started: Date?
    /// When it finished (succeeded, failed, cancelled or was lost).
    public var finished: Date?
    /// Whether it succeeded; `nil` until finished.
    public var success: Bool?
    /// The result (or error) as JSON text; `nil` is JSON `null`.
    public var resultJSON: String?
    /// The cron expression of a cron job.
    public var cronSchedule: String?
    /// The cron expression's IANA time zone; `nil` is UTC.
    public var cronTimeZone: String?
    /// Whether a failure schedules a retry.
    public var autoRescheduleOnFailure: Bool
    /// Milliseconds between a failure and its retry.
    public var autoRescheduleOnFailureDelay: Int
    /// Milliseconds a finished job stays in Redis before it is archived.
    public var removeDelay: Int
    /// The job this one is a retry or the next cron run of.
    public var rescheduledFromJob: Int?
    /// 1 for a new job, +1 along an auto-retry chain.
    public var attempt: Int
    /// When the job was created.
    public var createdAt: Date
    /// The worker that claimed it.
    public var workerId: String?
    /// When this job ended without its retry, re-run or next cron run because
    /// the app had scheduled a job of the same type and user after this one
    /// started: that newer job's id (the newer schedule wins).
    public var followUpSupersededBy: Int?
    /// Most attempts in all when auto-retried; `nil` is no limit.
    public var autoRescheduleOnFailureMaxAttempts: Int? = nil
    /// How the delay between retries grows.
    public var autoRescheduleOnFailureBackoff: RetryBackoff = .fixed
    /// For a failed job: how long it is kept in Redis, in ms, instead of
    /// ``removeDelay`` (the worker's ``WorkerPoolConfiguration/failedJobRetention``).
    public var failedRetention: Int? = nil
    /// The trace context of the span that scheduled the job (the tracer's
    /// carrier as JSON), stored only when a tracer was bootstrapped: the run's
    /// span links to that span. Not part of the JSON or the history log.
    public var traceContext: String?

    /// When it becomes eligible for archiving: `finished + removeDelay`, or
    /// `finished + failedRetention` for a failed job.
    public var removeAt: Date? {
        finished.map { $0.addingTimeInterval(Double(failedRetention ?? removeDelay) / 1000) }
    }

    /// The last change: finished, else started, else created.
    public var updatedAt: Date { finished ?? started ?? createdAt }

    /// The job's input as a JSON value.
    public var data: JSONValue { (try? JSONValue(jsonText: dataJSON)) ?? .string(dataJSON ?? "") }

    /// The job's result as a JSON value.
    public var result: JSONValue { (try? JSONValue(jsonText: resultJSON)) ?? .string(resultJSON ?? "") }

    /// The job's state.
    public var state: State {
        if finished != nil { return .finished }
        if started != nil { return .running }
        return .pending
    }

    /// Where a job is in its life.
    public enum State: String, Sendable, Hashable, Codable, CaseIterable {
        /// Waiting for its due time or a worker.
        case pending
        /// Claimed by a worker.
        case running
        /// Succeeded, failed or cancelled; waiting for the archiver.
        case finished
    }

    /// Decodes the data as a job's input type.
    public func decodeData<Input: Decodable>(as type: Input.Type = Input.self) throws -> Input {
        try JSONDecoder().decode(Input.self, from: Data((dataJSON ?? "null").utf8))
    }
}

extension WorkerJob: Codable {
    enum CodingKeys: String, CodingKey {
        case id, type, userId, data, due, started, finished, success, result, cronSchedule, cronTimeZone
        case autoRescheduleOnFailure, autoRescheduleOnFailureDelay, removeDelay, removeAt, rescheduledFromJob
        case attempt, createdAt, updatedAt, workerId, state, followUpSupersededBy
        case autoRescheduleOnFailureMaxAttempts, autoRescheduleOnFailureMaxDelay, failedRetention
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(type, forKey: .type)
        try container.encode(userId, forKey: .userId)
        try container.encode(data, forKey: .data)
        try container.encode(due.iso8601Milliseconds, forKey: .due)
        try container.encode(started?.iso8601Milliseconds, forKey: .started)
        try container.encode(finished?.iso8601Milliseconds, forKey: .finished)
        try container.encode(success, forKey: .success)
        try container.encode(result, forKey: .result)
        try container.encode(cronSchedule, forKey: .cronSchedule)
        try container.encode(cronTimeZone, forKey: .cronTimeZone)
        try container.encode(autoRescheduleOnFailure, forKey: .autoRescheduleOnFailure)
        try container.encode(autoRescheduleOnFailureDelay, forKey: .autoRescheduleOnFailureDelay)
        try container.encode(removeDelay, forKey: .removeDelay)
        try container.encode(removeAt?.iso8601Milliseconds, forKey: .removeAt)
        try container.encode(rescheduledFromJob, forKey: .rescheduledFromJob)
        try container.encode(attempt, forKey: .attempt)
        try container.encode(createdAt.iso8601Milliseconds, forKey: .createdAt)
        try container.encode(updatedAt.iso8601Milliseconds, forKey: .updatedAt)
        try container.encode(workerId, forKey: .workerId)
        try container.encode(state, forKey: .state)
        try container.encodeIfPresent(followUpSupersededBy, forKey: .followUpSupersededBy)
        try container.encodeIfPresent(autoRescheduleOnFailureMaxAttempts, forKey: .autoRescheduleOnFailureMaxAttempts)
        try container.encodeIfPresent(autoRescheduleOnFailureBackoff.maxDelayMilliseconds, forKey: .autoRescheduleOnFailureMaxDelay)
        try container.encodeIfPresent(failedRetention, forKey: .failedRetention)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func date(_ key: CodingKeys) throws -> Date? {
            guard let text = try container.decodeIfPresent(String.self, forKey: key) else { return nil }
            guard let value = Date(iso8601Milliseconds: text) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "not an ISO 8601 date: \(text)")
            }
            return value
        }
        id = try container.decode(Int.self, forKey: .id)
        type = try container.decode(String.self, forKey: .type)
        userId = try container.decode(Int.self, forKey: .userId)
        let dataValue = try container.decodeIfPresent(JSONValue.self, forKey: .data) ?? .null
        dataJSON = dataValue == .null ? nil : dataValue.jsonText
        let resultValue = try container.decodeIfPresent(JSONValue.self, forKey: .result) ?? .null
        resultJSON = resultValue == .null ? nil : resultValue.jsonText
        guard let created = try date(.createdAt) else {
            throw DecodingError.keyNotFound(CodingKeys.createdAt, .init(codingPath: [], debugDescription: "createdAt is required"))
        }
        createdAt = created
        due = try date(.due) ?? created
        started = try date(.started)
        finished = try date(.finished)
        success = try container.decodeIfPresent(Bool.self, forKey: .success)
        cronSchedule = try container.decodeIfPresent(String.self, forKey: .cronSchedule)
        cronTimeZone = try container.decodeIfPresent(String.self, forKey: .cronTimeZone)
        autoRescheduleOnFailure = try container.decodeIfPresent(Bool.self, forKey: .autoRescheduleOnFailure) ?? false
        autoRescheduleOnFailureDelay = try container.decodeIfPresent(Int.self, forKey: .autoRescheduleOnFailureDelay) ?? 0
        removeDelay = try container.decodeIfPresent(Int.self, forKey: .removeDelay) ?? 0
        rescheduledFromJob = try container.decodeIfPresent(Int.self, forKey: .rescheduledFromJob)
        attempt = try container.decodeIfPresent(Int.self, forKey: .attempt) ?? 1
        workerId = try container.decodeIfPresent(String.self, forKey: .workerId)
        followUpSupersededBy = try container.decodeIfPresent(Int.self, forKey: .followUpSupersededBy)
        autoRescheduleOnFailureMaxAttempts = try container.decodeIfPresent(Int.self, forKey: .autoRescheduleOnFailureMaxAttempts)
        autoRescheduleOnFailureBackoff =
            try container.decodeIfPresent(Int.self, forKey: .autoRescheduleOnFailureMaxDelay)
            .map { .exponential(maxDelay: .milliseconds($0)) } ?? .fixed
        failedRetention = try container.decodeIfPresent(Int.self, forKey: .failedRetention)
    }
}
