// swift-tools-version:6.0
import PackageDescription

// The benchmark executables, in their own package (as swift-nio keeps its benchmarks) so that
// their dependencies (HdrHistogram) stay out of the root manifest and out of apps that depend
// on Conveyor. Build from the repository root: `make bench`, `make bench-history`, or
// `swift build -c release --package-path Benchmarks --product conveyor-e2e-bench`.

// What both benchmarks against a redis-server link: Conveyor with its client and test kit
// (a private redis-server), the command line and HdrHistogram.
let redisBenchmark: [Target.Dependency] = [
    .product(name: "ConveyorTesting", package: "Conveyor"),
    .product(name: "Conveyor", package: "Conveyor"),
    .product(name: "ConveyorRedis", package: "Conveyor"),
    .product(name: "ArgumentParser", package: "swift-argument-parser"),
    .product(name: "Histogram", package: "hdrhistogram-swift"),
]

let package = Package(
    name: "ConveyorBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // The root package by path. `name:` fixes how the products below refer to it: a path
        // dependency's identity is otherwise its folder's name, which differs between clones.
        .package(name: "Conveyor", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.1.0"),
    ],
    targets: [
        // The Redis client against redis-benchmark.
        .executableTarget(
            name: "conveyor-bench",
            dependencies: redisBenchmark + [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "ConveyorBench"
        ),
        // End to end: scheduling, claiming and completing with real `conveyor worker` processes.
        .executableTarget(
            name: "conveyor-e2e-bench",
            dependencies: redisBenchmark + [.product(name: "Tracing", package: "swift-distributed-tracing")],
            path: "EndToEnd"
        ),
        // Writes a history at production volume for scripts/history-bench.sh.
        .executableTarget(
            name: "conveyor-history-bench",
            dependencies: [.product(name: "Conveyor", package: "Conveyor")],
            path: "HistoryBench"
        ),
    ],
    swiftLanguageModes: [.v6]
)
