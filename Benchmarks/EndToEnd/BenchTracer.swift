import Synchronization
import Tracing

/// A tracer that does what a real one does per span — ids, attributes, a
/// W3C `traceparent` injected and extracted — and then drops the span, so
/// `--trace` measures Conveyor's own tracing cost without an exporter's.
struct BenchTracer: Tracer {
    private static let nextId = Atomic<UInt64>(1)

    func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> BenchSpan {
        let parent = context()
        let id = Self.nextId.add(1, ordering: .relaxed).newValue
        var spanContext = parent
        spanContext[BenchSpanKey.self] = BenchSpanIds(trace: parent[BenchSpanKey.self]?.trace ?? id, span: id)
        return BenchSpan(context: spanContext, operationName: operationName)
    }

    func forceFlush() {}

    func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let ids = context[BenchSpanKey.self] else { return }
        injector.inject(ids.traceparent, forKey: "traceparent", into: &carrier)
    }

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let value = extractor.extract(key: "traceparent", from: carrier) else { return }
        let parts = value.split(separator: "-")
        guard parts.count == 4, let trace = UInt64(parts[1].suffix(16), radix: 16), let span = UInt64(parts[2], radix: 16) else { return }
        context[BenchSpanKey.self] = BenchSpanIds(trace: trace, span: span)
    }
}

struct BenchSpanIds: Sendable {
    var trace: UInt64
    var span: UInt64

    var traceparent: String {
        let trace = String(trace, radix: 16)
        let span = String(span, radix: 16)
        return "00-" + String(repeating: "0", count: 32 - trace.count) + trace + "-" + String(repeating: "0", count: 16 - span.count) + span
            + "-01"
    }
}

enum BenchSpanKey: ServiceContextKey {
    typealias Value = BenchSpanIds
}

/// A span that keeps its attributes and links until it ends, then is dropped.
final class BenchSpan: Span {
    private struct State {
        var operationName: String
        var attributes: SpanAttributes = [:]
        var links: [SpanLink] = []
        var status: SpanStatus?
    }

    let context: ServiceContext
    private let state: Mutex<State>

    init(context: ServiceContext, operationName: String) {
        self.context = context
        self.state = Mutex(State(operationName: operationName))
    }

    var operationName: String {
        get { state.withLock { $0.operationName } }
        set { state.withLock { $0.operationName = newValue } }
    }

    var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { $0.attributes = newValue } }
    }

    var isRecording: Bool { true }

    func setStatus(_ status: SpanStatus) { state.withLock { $0.status = status } }
    func addEvent(_ event: SpanEvent) {}
    func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {}
    func addLink(_ link: SpanLink) { state.withLock { $0.links.append(link) } }
    func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {}
}
