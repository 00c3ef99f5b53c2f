// What an app needs of the Redis client, re-exported: connect (RedisClient,
// RedisConfiguration), send commands from jobs (RedisCommand, RESPArgument,
// RESPValue), handle errors (RedisError), and run a one-at-a-time producer on
// the client's event loop (EventLoopTaskExecutor). Connections, scripts and
// the embedded server stay out of the Conveyor API: `import ConveyorRedis`
// or `import ConveyorTesting` reaches them.
@_exported import class ConveyorRedis.RedisClient
@_exported import struct ConveyorRedis.RedisConfiguration
@_exported import struct ConveyorRedis.RedisError
@_exported import struct ConveyorRedis.RedisCommand
@_exported import protocol ConveyorRedis.RESPArgument
@_exported import enum ConveyorRedis.RESPValue
@_exported import class ConveyorRedis.EventLoopTaskExecutor

// What an app needs to run a worker pool in process with graceful shutdown
// on SIGTERM (`ServiceGroup(services: [client, pool], gracefulShutdownSignals:
// [.sigterm, .sigint], logger: logger)`), without adding
// swift-service-lifecycle itself; `import ServiceLifecycle` reaches the rest.
@_exported import class ServiceLifecycle.ServiceGroup
@_exported import protocol ServiceLifecycle.Service
