import Foundation
import Tracing

/// Spans for scheduling and running jobs (swift-distributed-tracing), after
/// the OpenTelemetry messaging conventions: scheduling is a `send` span of kind
/// producer, each run a `process` span of kind consumer. The producer's context
/// is stored with the job (job-hash field `tc`, injected with the tracer's
/// `Injector`); the run extracts it and *links* its span to it (a job may run
/// long after, and more than once, so the run is not the producer's child).
///
/// With no tracer (swift-distributed-tracing's no-op tracer, the default) no
/// span is made and no `tc` is stored, so an app that does not trace pays nothing.
struct JobTracing: Sendable {
    /// `nil` when tracing is off.
    let tracer: (any Tracer)?

    /// Largest stored trace context (`scheduleJobs` refuses more).
    static let maxTraceContextBytes = 4096

    /// - Parameter tracer: The tracer; `nil` uses the bootstrapped `InstrumentationSystem.tracer`.
    init(tracer: (any Tracer)?) {
        let tracer = tracer ?? InstrumentationSystem.tracer
        self.tracer = tracer is NoOpTracer ? nil : tracer
    }

    /// Attribute names (OpenTelemetry semantic conventions, messaging; `conveyor.*` are ours).
    enum Attribute {
        static let system = "messaging.system"
        static let operationType = "messaging.operation.type"
        static let operationName = "messaging.operation.name"
        static let destination = "messaging.destination.name"
        static let partition = "messaging.destination.partition.id"
        static let messageId = "messaging.message.id"
        static let batchCount = "messaging.batch.message_count"
        static let consumerGroup = "messaging.consumer.group.name"
        static let attempt = "conveyor.job.attempt"
        static let workerId = "conveyor.worker.id"
    }

    /// The value of `messaging.system`.
    static let system = "conveyor"

    // MARK: Producer

    /// A started scheduling span and the context to store with its jobs.
    struct ScheduleSpan {
        let span: any Span
        /// The tracer's carrier as JSON, or `nil` when it injected nothing.
        let traceContext: String?
    }

    /// Starts the span of one scheduling call (`send <type>`, or `send` for
    /// several types), in the caller's current context.
    func startScheduling(types: @autoclosure () -> [String]) -> ScheduleSpan? {
        guard let tracer else { return nil }
        let types = types()
        let distinct = Set(types)
        let destination = distinct.count == 1 ? distinct.first : nil
        let span = tracer.startSpan(destination.map { "send \($0)" } ?? "send", ofKind: .producer)
        span.updateAttributes { attributes in
            attributes[Attribute.system] = Self.system
            attributes[Attribute.operationType] = "send"
            attributes[Attribute.operationName] = "send"
            if let destination { attributes[Attribute.destination] = destination }
            if types.count > 1 { attributes[Attribute.batchCount] = types.count }
        }
        var carrier: [String: String] = [:]
        tracer.inject(span.context, into: &carrier, using: TraceCarrier())
        return ScheduleSpan(span: span, traceContext: Self.encode(carrier))
    }

    /// Ends a scheduling span: the job ids (one job: `messaging.message.id`), or the error.
    func endScheduling(_ scheduling: ScheduleSpan?, ids: [Int]?, error: (any Error)?) {
        guard let span = scheduling?.span else { return }
        if let ids, ids.count == 1 { span.attributes[Attribute.messageId] = String(ids[0]) }
        if let error {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
        }
        span.end()
    }

    // MARK: Consumer

    /// Runs `body` (a job's run) in a `process <type>` span of kind consumer,
    /// linked to the span that scheduled the job; the job's own spans are its
    /// children (`ServiceContext.current` inside `body`).
    func withRunSpan<Result>(
        _ job: WorkerJob, partition: Int, workerId: String, _ body: () async throws -> Result
    ) async throws -> Result {
        guard let tracer else { return try await body() }
        let span = tracer.startSpan("process \(job.type)", context: .topLevel, ofKind: .consumer)
        if let traceContext = job.traceContext, let carrier = Self.decode(traceContext) {
            var producer = ServiceContext.topLevel
            tracer.extract(carrier, into: &producer, using: TraceCarrier())
            span.addLink(SpanLink(context: producer, attributes: [:]))
        }
        span.updateAttributes { attributes in
            attributes[Attribute.system] = Self.system
            attributes[Attribute.operationType] = "process"
            attributes[Attribute.operationName] = "process"
            attributes[Attribute.destination] = job.type
            attributes[Attribute.partition] = String(partition)
            attributes[Attribute.messageId] = String(job.id)
            attributes[Attribute.attempt] = job.attempt
            attributes[Attribute.workerId] = workerId
        }
        defer { span.end() }
        do {
            return try await ServiceContext.withValue(span.context) { try await body() }
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            throw error
        }
    }

    // MARK: Carrier

    /// The carrier as stored: a JSON object of strings, keys sorted; `nil` when empty or too large.
    static func encode(_ carrier: [String: String]) -> String? {
        guard !carrier.isEmpty, let data = try? JSONEncoder.conveyor.encode(carrier), data.count <= maxTraceContextBytes else {
            return nil
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// The stored carrier; `nil` for text that is not a JSON object of strings.
    /// Decoded as `[String: String]` directly: `JSONValue`'s decoding tries
    /// each JSON type in turn, which cost about 4 µs more of worker CPU per
    /// run in the end-to-end benchmark.
    static func decode(_ text: String) -> [String: String]? {
        try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))
    }
}

/// Injects into and extracts from a `[String: String]` carrier.
struct TraceCarrier: Injector, Extractor {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }

    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}
