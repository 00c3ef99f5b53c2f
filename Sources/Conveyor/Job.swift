import Foundation
import Logging

/// A type of background job: one file in an app's `Jobs/` folder.
///
/// ```swift
/// // Jobs/SendEmail.swift
/// struct SendEmail: Job {
///     struct Input: Codable, Sendable { var to: String }
///     func run(_ params: JobParams<MyApp, Input>) async throws -> Nothing {
///         try await params.app.mailer.send(to: params.input.to)
///         return Nothing()
///     }
/// }
/// ```
///
/// The `ConveyorJobsPlugin` build plugin generates ``typeName`` (the
/// lowerCamelCase of the type name, here `"sendEmail"`), a `WorkerJobType`
/// enum with one case per file, and a ``JobRegistry`` of them all. A job type
/// defined outside `Jobs/` declares `typeName` itself.
public protocol Job: Sendable {
    /// The application context every job of the app receives.
    associatedtype App: Sendable
    /// The job's input, stored as JSON in the job's `data`.
    associatedtype Input: Codable & Sendable
    /// The job's result, stored as JSON in the job's `result`; ``Nothing`` for none.
    associatedtype Output: Codable & Sendable

    /// The name stored in Redis; stable across releases.
    static var typeName: String { get }

    /// Creates the job runner; one instance runs one job.
    init()

    /// Runs one job. A thrown error fails the job (and retries it if configured).
    func run(_ params: JobParams<App, Input>) async throws -> Output
}

/// What a job's `run` receives.
public struct JobParams<App: Sendable, Input: Sendable>: Sendable {
    /// The application's context.
    public let app: App
    /// The decoded `data` of the job.
    public let input: Input
    /// A logger carrying `conveyor.job.id`, `conveyor.job.type` and `conveyor.user.id`.
    public let log: Logger
    /// The job's record as claimed.
    public let job: WorkerJob

    /// Creates parameters (workers do this; tests may too).
    public init(app: App, input: Input, log: Logger, job: WorkerJob) {
        self.app = app
        self.input = input
        self.log = log
        self.job = job
    }
}

/// The input or output of a job that has none; encodes as JSON `null` and
/// decodes from anything.
public struct Nothing: Codable, Sendable, Hashable {
    /// The only value.
    public init() {}
    public init(from decoder: any Decoder) throws {}
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encodeNil()
    }
}

/// Every job type an app can run, by stored name.
///
/// The jobs plugin generates `WorkerJobType.registry()`; a registry can also
/// be built by hand with ``register(_:)``.
public struct JobRegistry<App: Sendable>: Sendable {
    /// Runs one job of a registered type: decodes the data, runs, encodes the result.
    public typealias Runner = @Sendable (_ app: App, _ job: WorkerJob, _ log: Logger) async throws -> String?

    private var runners: [String: Runner] = [:]
    private var inputChecks: [String: @Sendable (String?) throws -> Void] = [:]

    /// An empty registry.
    public init() {}

    /// Registers a job type under its ``Job/typeName``.
    public mutating func register<J: Job>(_ type: J.Type) where J.App == App {
        runners[J.typeName] = { app, job, log in
            let input: J.Input
            if let nothing = Nothing() as? J.Input {
                // No input to decode: skip JSON entirely (the no-op hot path).
                input = nothing
            } else {
                do {
                    input = try JSONDecoder().decode(J.Input.self, from: Data((job.dataJSON ?? "null").utf8))
                } catch {
                    throw ConveyorError(.invalidData, "data of job \(job.id) does not decode as \(J.typeName)'s input: \(error)")
                }
            }
            let output = try await J().run(JobParams(app: app, input: input, log: log, job: job))
            if output is Nothing { return nil }
            let encoded = try JSONEncoder.conveyor.encode(output)
            return String(decoding: encoded, as: UTF8.self)
        }
        inputChecks[J.typeName] = { dataJSON in
            _ = try JSONDecoder().decode(J.Input.self, from: Data((dataJSON ?? "null").utf8))
        }
    }

    /// Checks that `dataJSON` decodes as the `Input` of the job type stored as
    /// `typeName`, as a worker will decode it; `nil` data is JSON `null`.
    ///
    /// The untyped scheduling path (``UntypedJobConfig``, the CLI's `schedule
    /// --data`) calls this through ``JobScheduler/Configuration/inputCheck``,
    /// so data a job could never read is rejected before anything is written.
    /// - Throws: ``ConveyorError`` with code `unknownJobType` for a type not in
    ///   the registry, `invalidData` with the decoding error otherwise.
    public func checkInput(typeName: String, dataJSON: String?) throws(ConveyorError) {
        guard let check = inputChecks[typeName] else {
            throw ConveyorError(.unknownJobType, "unknown job type \"\(typeName)\"; known types: \(typeNames.joined(separator: ", "))")
        }
        do {
            try check(dataJSON)
        } catch {
            throw ConveyorError(.invalidData, "data for \(typeName) does not decode as its Input: \(Self.describe(error))")
        }
    }

    /// A decoding error in one line: what is wrong, and where (`to`, `items[2].id`).
    static func describe(_ error: any Error) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            let text = codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.hasPrefix(".") ? String(text.dropFirst()) : text
        }
        func at(_ codingPath: [any CodingKey]) -> String {
            codingPath.isEmpty ? "" : " at \(path(codingPath))"
        }
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing key \"\(key.stringValue)\"\(at(context.codingPath))"
        case .valueNotFound(_, let context):
            return "expected a value\(at(context.codingPath)), found null"
        case .typeMismatch(let type, let context):
            return "expected \(type)\(at(context.codingPath)): \(context.debugDescription)"
        case .dataCorrupted(let context):
            return "\(context.debugDescription)\(at(context.codingPath))"
        @unknown default:
            return "\(error)"
        }
    }

    /// The stored names of all registered types, sorted.
    public var typeNames: [String] { runners.keys.sorted() }

    /// Whether a type of that stored name is registered.
    public func contains(_ typeName: String) -> Bool { runners[typeName] != nil }

    /// The runner for a stored type name.
    public func runner(for typeName: String) -> Runner? { runners[typeName] }
}

extension JSONEncoder {
    /// Compact, sorted output for payloads stored in Redis.
    static var conveyor: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
