import ConveyorRedis

extension RedisCommand {
    /// A command whose first argument is `key`, routed by that key's slot on a
    /// Redis Cluster (every keyed command Conveyor sends is built this way).
    init(_ name: String, key: String, _ arguments: any RESPArgument...) {
        self.init(name, routingKey: key, arguments: [key] + arguments)
    }

    /// A command whose first argument is `key`, followed by `arguments`.
    init(_ name: String, key: String, arguments: [any RESPArgument]) {
        self.init(name, routingKey: key, arguments: [key] + arguments)
    }
}
