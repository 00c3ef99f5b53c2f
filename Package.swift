// swift-tools-version:6.0
import PackageDescription

// hiredis: on Linux its headers (<hiredis/hiredis.h>) and library are on the
// default search paths, so pkg-config is not asked. Its hiredis.pc adds
// -D_FILE_OFFSET_BITS=64, a flag SwiftPM refuses with a warning on every build,
// here and in every app that depends on Conveyor (a no-op on 64-bit Linux, and
// no off_t is in the API we use). Elsewhere (Homebrew) pkg-config finds them.
#if os(Linux)
let hiredisPkgConfig: String? = nil
#else
let hiredisPkgConfig: String? = "hiredis"
#endif

let package = Package(
    name: "Conveyor",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ConveyorRedis", targets: ["ConveyorRedis"]),
        .library(name: "Conveyor", targets: ["Conveyor"]),
        .library(name: "ConveyorCLI", targets: ["ConveyorCLI"]),
        // The web dashboard (issue 12): Hummingbird + swift-mustache; the core does not depend on it.
        .library(name: "ConveyorDashboard", targets: ["ConveyorDashboard"]),
        // A throwaway redis-server and a key namespace per test, for apps' own tests.
        .library(name: "ConveyorTesting", targets: ["ConveyorTesting"]),
        .executable(name: "conveyor", targets: ["conveyor"]),
        .plugin(name: "ConveyorJobsPlugin", targets: ["ConveyorJobsPlugin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        // rediss:// (TLS to managed Redis services).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        // Observability (issue 12): the metrics and tracing APIs in the library, the
        // Prometheus backend only in the CLI (`conveyor worker --metrics-port`).
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // `make docs` (swift package generate-documentation); a command plugin, built only when run.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: hiredisPkgConfig,
            providers: [.apt(["libhiredis-dev"])]
        ),
        // zlib, for the history log's compressed files; only Conveyor imports it.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "ConveyorRedis",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Child processes and a private redis-server: for tests (the app's and
        // ours) and the CLI's embedded server; not part of the Conveyor API.
        .target(
            name: "ConveyorTesting",
            dependencies: ["ConveyorRedis", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Conveyor",
            dependencies: [
                "ConveyorRedis",
                "CZlib",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            plugins: [.plugin(name: "ConveyorLuaPlugin")]
        ),
        // Embeds lua/ (the single source of truth for Redis state changes) into Conveyor.
        .executableTarget(name: "ConveyorLuaEmbedder"),
        .plugin(
            name: "ConveyorLuaPlugin",
            capability: .buildTool(),
            dependencies: [.target(name: "ConveyorLuaEmbedder")]
        ),
        // Reads Jobs/*.swift of an app target and writes WorkerJobs.generated.swift.
        .executableTarget(name: "ConveyorJobsGenerator"),
        .plugin(
            name: "ConveyorJobsPlugin",
            capability: .buildTool(),
            dependencies: [.target(name: "ConveyorJobsGenerator")]
        ),
        // Server-rendered operator UI over Conveyor's read and action APIs.
        .target(
            name: "ConveyorDashboard",
            dependencies: [
                "Conveyor",
                "ConveyorRedis",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ConveyorCLI",
            dependencies: [
                "ConveyorTesting",
                "Conveyor",
                "ConveyorDashboard",
                "ConveyorRedis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "conveyor",
            dependencies: [
                "ConveyorCLI", "Conveyor",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            plugins: [.plugin(name: "ConveyorJobsPlugin")]
        ),
        // Shared by the test targets: the Redis server and key namespaces tests use.
        .target(
            name: "ConveyorTestSupport",
            dependencies: [
                "ConveyorTesting",
                "ConveyorRedis",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/ConveyorTestSupport"
        ),
        .testTarget(
            name: "ConveyorRedisTests",
            dependencies: [
                "ConveyorTesting",
                "ConveyorRedis",
                "ConveyorTestSupport",
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "ConveyorTests",
            dependencies: [
                "Conveyor", "ConveyorRedis", "ConveyorCLI", "ConveyorTestSupport", .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Fault-injection scenarios (issue 10): real redis-server and `conveyor worker` processes.
        .target(
            name: "ConveyorChaos",
            dependencies: ["ConveyorTesting", "Conveyor", "ConveyorRedis", "ConveyorTestSupport"],
            path: "Chaos/ConveyorChaos"
        ),
        .executableTarget(
            name: "conveyor-chaos",
            dependencies: ["ConveyorChaos", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Chaos/ConveyorChaosRunner"
        ),
        .testTarget(
            name: "ConveyorChaosTests",
            dependencies: ["ConveyorChaos", "ConveyorTestSupport", "ConveyorRedis"]
        ),
        .testTarget(
            name: "ConveyorTestSupportTests",
            dependencies: ["ConveyorTestSupport", "ConveyorRedis"]
        ),
        .testTarget(
            name: "ConveyorDashboardTests",
            dependencies: [
                "ConveyorDashboard", "Conveyor", "ConveyorRedis", "ConveyorTestSupport", "ConveyorTesting",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ConveyorJobsGeneratorTests",
            dependencies: [.target(name: "ConveyorJobsGenerator")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
