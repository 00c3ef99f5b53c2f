import NIOCore

/// A task executor that runs tasks on one NIO event loop.
///
/// A task that prefers it (`withTaskExecutorPreference(client.taskExecutor) { … }`)
/// writes its commands from the event loop that owns the connection and is
/// resumed by the reply on that same loop. An awaited command then costs one
/// thread wake-up instead of two hops (pool thread → event loop for the write,
/// event loop → pool thread for the reply), which is most of a round trip's
/// latency on a small machine.
///
/// Use it for short, non-blocking code that awaits Redis in a loop, such as a
/// producer scheduling one job at a time. Never for work that blocks or
/// computes for long: it would stall every connection of that event loop.
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The event loop the tasks run on.
    public let eventLoop: any EventLoop

    /// Creates an executor for `eventLoop`.
    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
