import NIOCore
import Synchronization

/// A Lua script run with `EVALSHA`.
///
/// The SHA-1 is learned from the server's `SCRIPT LOAD` reply on first use and
/// cached, so the client needs no hashing code and never sends the source
/// more than once per server — except after `NOSCRIPT` (a `SCRIPT FLUSH`, a
/// restart or a failover), when it loads the script again and retries once,
/// and if that misses too (flushed again meanwhile) sends the source with `EVAL`.
public final class RedisScript: Sendable {
    /// A short name for errors and logs, e.g. `scheduleJobs`.
    public let name: String
    /// The Lua source.
    public let source: String
    private let cachedSHA = Mutex<String?>(nil)

    /// Creates a script.
    public init(name: String, source: String) {
        self.name = name
        self.source = source
    }

    /// The script's SHA-1 once it has been loaded.
    public var sha: String? { cachedSHA.withLock { $0 } }

    func remember(sha: String) {
        cachedSHA.withLock { $0 = sha }
    }
}

/// One invocation of a script: the script with its keys and arguments.
public struct RedisScriptCall: Sendable {
    /// The script to run.
    public var script: RedisScript
    /// `KEYS`: every key the script touches (Redis Cluster routes by them).
    public var keys: [String]
    /// `ARGV`.
    public var arguments: [any RESPArgument]

    /// More `ARGV`, already encoded, after ``arguments``.
    public var argumentList: RESPArgumentList

    /// Creates an invocation.
    public init(_ script: RedisScript, keys: [String], arguments: [any RESPArgument]) {
        self.init(script, keys: keys, arguments: arguments, argumentList: RESPArgumentList())
    }

    /// Creates an invocation whose `ARGV` is `arguments` followed by `argumentList`.
    public init(_ script: RedisScript, keys: [String], arguments: [any RESPArgument], argumentList: RESPArgumentList) {
        self.script = script
        self.keys = keys
        self.arguments = arguments
        self.argumentList = argumentList
    }

    func sourceCommand() -> RedisCommand {
        encode(verb: "EVAL", first: script.source)
    }

    func command(sha: String) -> RedisCommand {
        encode(verb: "EVALSHA", first: sha)
    }

    /// `<verb> <sha or source> <numkeys> keys... args...`, encoded straight
    /// into one buffer (no argument array, no existential per key).
    private func encode(verb: String, first: String) -> RedisCommand {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(
            64 + first.utf8.count + keys.count * 32 + arguments.count * 16 + argumentList.encoded.readableBytes)
        buffer.writeRESPLength(prefix: UInt8(ascii: "*"), 3 + keys.count + arguments.count + argumentList.count)
        buffer.writeRESPBulk(verb)
        buffer.writeRESPBulk(first)
        keys.count.writeRESPBulkString(into: &buffer)
        for key in keys { buffer.writeRESPBulk(key) }
        for argument in arguments { argument.writeRESPBulkString(into: &buffer) }
        buffer.writeImmutableBuffer(argumentList.encoded)
        // Routed by its keys (one slot, checked by the callers), so a script sent
        // through the public `pipeline` on a cluster reaches its master at once.
        var command = RedisCommand(encoded: buffer, name: verb)
        command.routingKey = keys.first
        return command
    }
}

extension RedisClient {
    /// Runs a script with `EVALSHA`, loading it first if the server lacks it.
    ///
    /// All keys of the call must share a hash slot (checked on a single node
    /// too); on a cluster it runs on the master of that slot.
    ///
    /// - Throws: ``RedisError``; a Lua error throws with code `server`, keys in
    ///   different slots throw ``RedisError/Code/crossSlot`` before anything is sent.
    @discardableResult
    nonisolated(nonsending) public func eval(_ call: RedisScriptCall, timeout: Duration? = nil) async throws(RedisError) -> RESPValue {
        // The common case, one round trip with no arrays: the script is loaded.
        var reply: RESPValue?
        if let router { return try await router.eval(call, timeout: timeout) }
        _ = try RedisCluster.slot(forKeys: call.keys, command: "EVALSHA \(call.script.name)")
        if let sha = call.script.sha {
            reply = try await connection().sendReturningErrors(call.command(sha: sha), timeout: timeout)
        }
        if reply == nil || reply?.isNoScriptError == true {
            // Not loaded yet, or flushed: the reloading path.
            reply = try await evalPipelined([call], timeout: timeout)[0]
        }
        if case .error(let message)? = reply {
            throw RedisError.server(message, command: "EVALSHA \(call.script.name)")
        }
        return reply!
    }

    /// Runs many script calls in one pipelined write; replies come back in
    /// order, error replies as values. Each call's keys must share a slot
    /// (``RedisError/Code/crossSlot``, thrown before anything is sent); on a
    /// cluster calls are grouped by master. Calls that hit `NOSCRIPT` are retried
    /// once after loading their script, so a retried call runs after calls that
    /// followed it in the pipeline (another client can load the script while
    /// Redis reads a large pipeline): calls whose order matters go in separate
    /// pipelines, one after another (`JobScheduler.rounds`).
    nonisolated(nonsending) public func evalPipelined(_ calls: [RedisScriptCall], timeout: Duration? = nil) async throws(RedisError) -> [RESPValue] {
        guard !calls.isEmpty else { return [] }
        if let router { return try await router.evalPipelined(calls, timeout: timeout) }
        for call in calls { _ = try RedisCluster.slot(forKeys: call.keys, command: "EVALSHA \(call.script.name)") }
        var commands: [RedisCommand] = []
        commands.reserveCapacity(calls.count)
        for call in calls {
            var sha = call.script.sha
            if sha == nil {
                try await load(call.script)
                sha = call.script.sha
            }
            commands.append(call.command(sha: sha!))
        }
        var replies = try await pipeline(commands, timeout: timeout)
        let missing = replies.indices.filter { replies[$0].isNoScriptError }
        guard !missing.isEmpty else { return replies }
        var reloaded = Set<ObjectIdentifier>()
        for index in missing where reloaded.insert(ObjectIdentifier(calls[index].script)).inserted {
            try await load(calls[index].script)
        }
        let retried = try await pipeline(missing.map { calls[$0].command(sha: calls[$0].script.sha!) }, timeout: timeout)
        var stillMissing: [Int] = []
        for (index, reply) in zip(missing, retried) {
            if reply.isNoScriptError {
                stillMissing.append(index)
            } else {
                replies[index] = reply
            }
        }
        // Flushed again between LOAD and EVALSHA (another client's SCRIPT FLUSH,
        // a failover): send the source itself, which cannot miss.
        if !stillMissing.isEmpty {
            let evaluated = try await pipeline(stillMissing.map { calls[$0].sourceCommand() }, timeout: timeout)
            for (index, reply) in zip(stillMissing, evaluated) { replies[index] = reply }
        }
        return replies
    }

    /// Loads a script into the server's cache and remembers its SHA-1.
    public func load(_ script: RedisScript) async throws(RedisError) {
        let reply = try await send(RedisCommand("SCRIPT", "LOAD", script.source))
        guard let sha = reply.string else {
            throw RedisError(.unexpectedReply, message: "SCRIPT LOAD \(script.name) returned \(reply)")
        }
        script.remember(sha: sha)
    }
}

extension RESPValue {
    /// `-NOSCRIPT ...`: the server does not have the script (flushed, restarted, failed over).
    var isNoScriptError: Bool {
        if case .error(let message) = self { return message.hasPrefix("NOSCRIPT") }
        return false
    }
}
