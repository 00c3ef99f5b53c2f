import Foundation

/// A worker process that announced itself recently: what ``JobInspector/liveWorkers()`` returns.
///
/// Each ``WorkerPool`` writes one of these to `<namespace>:worker:<id>` every
/// ``WorkerPoolConfiguration/heartbeatInterval``, with a time to live of three
/// intervals, and deletes it at graceful shutdown; a worker that dies
/// disappears when its key expires. Encodes to JSON with the field names
/// below (`conveyor stats --json` prints them).
public struct LiveWorker: Sendable, Hashable, Codable {
    /// The worker id, as stored on the jobs it claims (`workerId`).
    public var id: String
    /// The host name of its process.
    public var host: String
    /// Its process id.
    public var pid: Int
    /// Jobs it runs at once at most.
    public var concurrency: Int
    /// The job types it runs.
    public var jobTypes: [String]
    /// When the pool started (Redis's clock, as estimated by the worker).
    public var started: Date
    /// When it last announced itself (Redis's clock, as estimated by the worker).
    public var lastHeartbeat: Date
    /// Jobs running in it at that heartbeat.
    public var jobsRunning: Int

    /// Creates a record.
    public init(
        id: String, host: String, pid: Int, concurrency: Int, jobTypes: [String], started: Date, lastHeartbeat: Date,
        jobsRunning: Int
    ) {
        self.id = id
        self.host = host
        self.pid = pid
        self.concurrency = concurrency
        self.jobTypes = jobTypes
        self.started = started
        self.lastHeartbeat = lastHeartbeat
        self.jobsRunning = jobsRunning
    }

    enum CodingKeys: String, CodingKey {
        case id, host, pid, concurrency, jobTypes, started, lastHeartbeat, jobsRunning
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(host, forKey: .host)
        try container.encode(pid, forKey: .pid)
        try container.encode(concurrency, forKey: .concurrency)
        try container.encode(jobTypes, forKey: .jobTypes)
        try container.encode(started.iso8601Milliseconds, forKey: .started)
        try container.encode(lastHeartbeat.iso8601Milliseconds, forKey: .lastHeartbeat)
        try container.encode(jobsRunning, forKey: .jobsRunning)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func date(_ key: CodingKeys) throws -> Date {
            let text = try container.decode(String.self, forKey: key)
            guard let value = Date(iso8601Milliseconds: text) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "not an ISO 8601 date: \(text)")
            }
            return value
        }
        id = try container.decode(String.self, forKey: .id)
        host = try container.decode(String.self, forKey: .host)
        pid = try container.decode(Int.self, forKey: .pid)
        concurrency = try container.decode(Int.self, forKey: .concurrency)
        jobTypes = try container.decode([String].self, forKey: .jobTypes)
        started = try date(.started)
        lastHeartbeat = try date(.lastHeartbeat)
        jobsRunning = try container.decode(Int.self, forKey: .jobsRunning)
    }
}
