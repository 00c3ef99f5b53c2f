import ConveyorCLI
import Foundation
import NIOCore
import NIOPosix

// Opt-in: run Swift concurrency on the NIO event loops, so a job, its Redis
// replies and its completion hop between fewer threads. It must happen before
// any task is enqueued, hence first. Job code must then never block a thread.
if ProcessInfo.processInfo.environment["CONVEYOR_NIO_EXECUTOR"] == "1" {
    guard NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() else {
        fatalError("CONVEYOR_NIO_EXECUTOR=1: the NIO executor could not be installed")
    }
}

// The example app: its job types come from Jobs/ through the ConveyorJobsPlugin.
await ConveyorCLI.main(CLIApp(name: "conveyor", registry: WorkerJobType.registry()) { redis in DemoApp(redis: redis) })
