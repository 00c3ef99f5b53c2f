import ArgumentParser
import CoreMetrics
import Logging
import Prometheus

/// `--metrics-port N [--metrics-bind ADDR]`: serve `GET /metrics` (Prometheus
/// text) for this process, for `worker` and `archiver`.
struct MetricsOptions: ParsableArguments {
    @Option(
        name: .customLong("metrics-port"),
        help: ArgumentHelp("Serve GET /metrics (Prometheus text exposition) on this port; 0 picks a free one (logged).", valueName: "port")
    )
    var metricsPort: Int?
    @Option(
        name: .customLong("metrics-bind"),
        help: ArgumentHelp("Address the metrics endpoint binds; loopback only by default (the endpoint has no authentication).", valueName: "addr")
    )
    var metricsBind: String = "127.0.0.1"

    func validate() throws {
        if let metricsPort, !(0...65_535).contains(metricsPort) {
            throw ValidationError("--metrics-port must be between 0 and 65535, got \(metricsPort)")
        }
        guard !metricsBind.isEmpty else { throw ValidationError("--metrics-bind must not be empty") }
    }

    /// With `--metrics-port`: bootstraps swift-metrics with a Prometheus
    /// factory (the app's own metrics land there too) and returns the server
    /// to run; `nil` without the option. Call once per process.
    func bootstrap(logger: Logger) -> MetricsServer? {
        guard let metricsPort else { return nil }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return MetricsServer(registry: registry, host: metricsBind, port: metricsPort, logger: logger)
    }
}
