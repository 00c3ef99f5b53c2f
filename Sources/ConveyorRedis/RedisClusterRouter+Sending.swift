import NIOCore

/// Sending through the slot map: redirects, pipelines split by master, scripts and
/// dedicated connections.
extension RedisClusterRouter {
    // MARK: Sending

    private enum Redirect {
        case moved(slot: Int, RedisClusterAddress)
        case ask(RedisClusterAddress)
        case retry(refresh: Bool)
        case none
    }

    private static func redirect(_ reply: RESPValue, from node: RedisClusterAddress) -> Redirect {
        guard case .error(let message) = reply else { return .none }
        if message.hasPrefix("MOVED ") || message.hasPrefix("ASK ") {
            let parts = message.split(separator: " ")
            guard parts.count >= 3, let slot = Int(parts[1]),
                let target = RedisClusterAddress(redirectTarget: parts[2], replyingNode: node)
            else { return .none }
            return parts[0] == "MOVED" ? .moved(slot: slot, target) : .ask(target)
        }
        if message.hasPrefix("TRYAGAIN") { return .retry(refresh: false) }
        if message.hasPrefix("CLUSTERDOWN") { return .retry(refresh: true) }
        return .none
    }

    /// Whether a pipeline reply has to be sent again by ``sendOne``.
    private static func needsResend(_ reply: RESPValue) -> Bool {
        guard case .error(let message) = reply else { return false }
        return message.hasPrefix("MOVED ") || message.hasPrefix("ASK ") || message.hasPrefix("TRYAGAIN")
            || message.hasPrefix("CLUSTERDOWN")
    }

    /// Exponential backoff with jitter for `TRYAGAIN`, `CLUSTERDOWN` and unreachable masters.
    private static func pause(attempt: Int, until deadline: ContinuousClock.Instant) async -> Bool {
        let full = min(500, 10 << min(attempt, 6))
        let delay = Duration.milliseconds(full / 2 + Int.random(in: 0...(full / 2)))
        guard ContinuousClock.now + delay < deadline else { return false }
        try? await Task.sleep(for: delay)
        return !Task.isCancelled
    }

    /// Sends one command to the master of `slot`, following `MOVED` and
    /// `ASK`, retrying `TRYAGAIN`/`CLUSTERDOWN` and unreachable masters until
    /// `deadline`; an error reply is returned as a value.
    func sendOne(
        _ command: RedisCommand, slot: Int?, timeout: Duration?, deadline: ContinuousClock.Instant
    ) async throws(RedisError) -> RESPValue {
        try await sendOne(command, trailer: nil, slot: slot, timeout: timeout, deadline: deadline).reply
    }

    /// ``sendOne(_:slot:timeout:deadline:)`` with `trailer` (a `WAIT`) written
    /// right after the command on the same connection in every attempt, so
    /// that it acknowledges the attempt that ran; its reply comes back beside
    /// the command's (`nil` on a dedicated connection, where it is not sent).
    func sendOne(
        _ command: RedisCommand, trailer: RedisCommand?, slot: Int?, timeout: Duration?, deadline: ContinuousClock.Instant
    ) async throws(RedisError) -> (reply: RESPValue, trailer: RESPValue?) {
        var redirects = 0
        var attempts = 0
        var asking: RedisClusterAddress?
        // A command sent without a routing key learns its slot from a MOVED.
        var slot = slot
        while true {
            let node: RedisClusterAddress
            let client: RedisClient
            if let asking {
                node = asking
                client = try self.client(for: asking)
            } else {
                let found = try await target(slot: slot)
                node = found.0
                client = found.1
            }
            let reply: RESPValue
            var trailerReply: RESPValue?
            if command.isBlocking {
                reply = try await sendDedicated(command, asking: asking != nil, client: client, timeout: timeout)
            } else {
                let connection: RedisConnection
                do throws(RedisError) {
                    connection = try await client.connection()
                } catch {
                    // Nothing was sent: the master is unreachable (failed over?). Re-read the topology and retry.
                    attempts += 1
                    guard await Self.pause(attempt: attempts, until: deadline) else { throw error }
                    await refresh()
                    continue
                }
                do throws(RedisError) {
                    if asking != nil || trailer != nil {
                        // One write: no other caller's command can come between ASKING, the command and its WAIT.
                        let batch = (asking != nil ? [RedisCommand("ASKING")] : []) + [command] + (trailer.map { [$0] } ?? [])
                        let replies = try await connection.pipeline(batch, timeout: timeout)
                        reply = replies[asking != nil ? 1 : 0]
                        trailerReply = trailer != nil ? replies.last : nil
                    } else {
                        reply = try await connection.sendReturningErrors(command, timeout: timeout)
                    }
                } catch {
                    // It may have run: not resent, as on a single node; the topology may have changed.
                    scheduleRefresh()
                    throw error
                }
            }
            asking = nil
            switch Self.redirect(reply, from: node) {
            case .none:
                return (reply, trailerReply)
            case .moved(let movedSlot, let target):
                redirects += 1
                guard redirects <= Self.maxRedirects else { throw Self.redirectLoop(command, reply) }
                applyMoved(slot: movedSlot, to: target)
                slot = movedSlot
            case .ask(let target):
                redirects += 1
                guard redirects <= Self.maxRedirects else { throw Self.redirectLoop(command, reply) }
                asking = target
            case .retry(let refreshFirst):
                attempts += 1
                guard await Self.pause(attempt: attempts, until: deadline) else { return (reply, trailerReply) }
                if refreshFirst { scheduleRefresh() }
            }
        }
    }

    private func sendDedicated(
        _ command: RedisCommand, asking: Bool, client: RedisClient, timeout: Duration?
    ) async throws(RedisError) -> RESPValue {
        do throws(RedisError) {
            return try await client.withDedicatedConnection { connection throws(RedisError) in
                if asking {
                    return try await connection.pipeline([RedisCommand("ASKING"), command], timeout: timeout)[1]
                }
                return try await connection.sendReturningErrors(command, timeout: timeout)
            }
        } catch {
            scheduleRefresh()
            throw error
        }
    }

    private static func redirectLoop(_ command: RedisCommand, _ reply: RESPValue) -> RedisError {
        RedisError(
            .clusterRedirectLoop,
            message: "\(command.name): redirected more than \(maxRedirects) times (last: \(reply.errorMessage ?? "?"));"
                + " the cluster is resharding or its nodes disagree"
        )
    }

    func send(_ command: RedisCommand, timeout: Duration?) async throws(RedisError) -> RESPValue {
        let slot = command.routingKey.map(RedisCluster.slot(forKey:))
        let reply = try await sendOne(command, slot: slot, timeout: timeout, deadline: deadline(timeout))
        if case .error(let message) = reply { throw RedisError.server(message, command: command.name) }
        return reply
    }

    func deadline(_ timeout: Duration?) -> ContinuousClock.Instant {
        .now + (timeout ?? configuration.commandTimeout)
    }

    private enum GroupOutcome: Sendable {
        case replies(RedisClusterAddress, [Int], [RESPValue])
        case notSent([Int])
        case failed(RedisError)
    }

    /// Splits `commands` by master, sends each part as one pipeline
    /// (concurrently), and returns the replies in the order of `commands`.
    /// Redirected commands are sent again one by one, in order.
    func pipeline(_ commands: [RedisCommand], slots: [Int?], timeout: Duration?) async throws(RedisError) -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        let deadline = deadline(timeout)
        var groups: [RedisClusterAddress: (address: RedisClusterAddress, client: RedisClient, indices: [Int])] = [:]
        var order: [RedisClusterAddress] = []
        // Commands without a key share one master per pipeline.
        var anyMaster: (RedisClusterAddress, RedisClient)?
        for (index, slot) in slots.enumerated() {
            let found: (RedisClusterAddress, RedisClient)
            if slot == nil, let anyMaster {
                found = anyMaster
            } else {
                found = try await target(slot: slot)
                if slot == nil { anyMaster = found }
            }
            let (address, client) = found
            if groups[address] == nil {
                groups[address] = (address, client, [])
                order.append(address)
            }
            groups[address]!.indices.append(index)
        }
        var replies = [RESPValue?](repeating: nil, count: commands.count)
        let parts = order.map { groups[$0]! }
        let outcomes: [GroupOutcome]
        if parts.count == 1 {
            outcomes = [await Self.sendGroup(parts[0].address, parts[0].client, parts[0].indices, commands, timeout)]
        } else {
            outcomes = await withTaskGroup(of: GroupOutcome.self) { group in
                for part in parts {
                    group.addTask { await Self.sendGroup(part.address, part.client, part.indices, commands, timeout) }
                }
                var all: [GroupOutcome] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
        }
        for outcome in outcomes {
            switch outcome {
            case .replies(let node, let indices, let values):
                for (index, value) in zip(indices, values) {
                    replies[index] = value
                    // Patch the map before resending, so the resend goes straight to the new owner.
                    if case .moved(let slot, let target) = Self.redirect(value, from: node) {
                        applyMoved(slot: slot, to: target)
                    }
                }
            case .notSent:
                break  // left nil: sent again below
            case .failed(let error):
                scheduleRefresh()
                throw error
            }
        }
        for index in replies.indices where replies[index] == nil || Self.needsResend(replies[index]!) {
            // The WAIT acknowledging this command goes along on the resend's
            // connection (it counted the old one's writes); the fewer count stays.
            if let wait = Self.acknowledgingWait(of: index, commands, slots) {
                let (reply, acknowledged) = try await sendOne(
                    commands[index], trailer: commands[wait], slot: slots[index], timeout: timeout, deadline: deadline
                )
                replies[index] = reply
                replies[wait] = Self.fewerAcknowledgements(replies[wait], acknowledged)
            } else {
                replies[index] = try await sendOne(commands[index], slot: slots[index], timeout: timeout, deadline: deadline)
            }
        }
        return replies.map { $0! }
    }

    /// The first `WAIT` after `index` in the same slot (it acknowledges the
    /// command, which it follows on that slot's connection), if any.
    private static func acknowledgingWait(of index: Int, _ commands: [RedisCommand], _ slots: [Int?]) -> Int? {
        guard let slot = slots[index], commands[index].name.uppercased() != "WAIT" else { return nil }
        return (index + 1..<commands.count).first { slots[$0] == slot && commands[$0].name.uppercased() == "WAIT" }
    }

    /// The smaller of two `WAIT` counts; a reply that is not a count wins (the caller counts it as none).
    private static func fewerAcknowledgements(_ first: RESPValue?, _ second: RESPValue?) -> RESPValue? {
        guard let first else { return second }
        guard let second else { return first }
        guard let a = first.int, let b = second.int else { return first.int == nil ? first : second }
        return .integer(min(a, b))
    }

    private static func sendGroup(
        _ node: RedisClusterAddress, _ client: RedisClient, _ indices: [Int], _ commands: [RedisCommand], _ timeout: Duration?
    ) async -> GroupOutcome {
        let connection: RedisConnection
        do {
            connection = try await client.connection()
        } catch {
            return .notSent(indices)
        }
        do throws(RedisError) {
            return .replies(node, indices, try await connection.pipeline(indices.map { commands[$0] }, timeout: timeout))
        } catch {
            return .failed(error)
        }
    }

    // MARK: Scripts

    func eval(_ call: RedisScriptCall, timeout: Duration?) async throws(RedisError) -> RESPValue {
        let slot = try RedisCluster.slot(forKeys: call.keys, command: "EVALSHA \(call.script.name)")
        let deadline = deadline(timeout)
        let sha = try await sha(of: call.script, slot: slot, timeout: timeout, deadline: deadline)
        var reply = try await sendOne(call.command(sha: sha), slot: slot, timeout: timeout, deadline: deadline)
        if reply.isNoScriptError {
            // Script caches are per node: EVAL with the source runs it and caches it on this node.
            reply = try await sendOne(call.sourceCommand(), slot: slot, timeout: timeout, deadline: deadline)
        }
        if case .error(let message) = reply {
            throw RedisError.server(message, command: "EVALSHA \(call.script.name)")
        }
        return reply
    }

    func evalPipelined(_ calls: [RedisScriptCall], timeout: Duration?) async throws(RedisError) -> [RESPValue] {
        var slots: [Int?] = []
        slots.reserveCapacity(calls.count)
        for call in calls {
            slots.append(try RedisCluster.slot(forKeys: call.keys, command: "EVALSHA \(call.script.name)"))
        }
        let deadline = deadline(timeout)
        var commands: [RedisCommand] = []
        commands.reserveCapacity(calls.count)
        for (call, slot) in zip(calls, slots) {
            let sha = try await sha(of: call.script, slot: slot, timeout: timeout, deadline: deadline)
            commands.append(call.command(sha: sha))
        }
        var replies = try await pipeline(commands, slots: slots, timeout: timeout)
        let missing = replies.indices.filter { replies[$0].isNoScriptError }
        if !missing.isEmpty {
            let evaluated = try await pipeline(
                missing.map { calls[$0].sourceCommand() }, slots: missing.map { slots[$0] }, timeout: timeout
            )
            for (index, reply) in zip(missing, evaluated) { replies[index] = reply }
        }
        return replies
    }

    /// The script's SHA-1, loading it on the master of `slot` the first time.
    private func sha(
        of script: RedisScript, slot: Int?, timeout: Duration?, deadline: ContinuousClock.Instant
    ) async throws(RedisError) -> String {
        if let sha = script.sha { return sha }
        let reply = try await sendOne(RedisCommand("SCRIPT", "LOAD", script.source), slot: slot, timeout: timeout, deadline: deadline)
        guard let sha = reply.string, case .bulkString = reply else {
            throw RedisError(.unexpectedReply, message: "SCRIPT LOAD \(script.name) returned \(reply)")
        }
        script.remember(sha: sha)
        return sha
    }

    // MARK: Dedicated connections

    /// Runs `body` on a dedicated connection to the master of `slot`. A
    /// connect failure (nothing ran yet) re-reads the topology and tries
    /// again until the connect timeout passes; a failure inside `body` is
    /// thrown after scheduling a refresh, since the caller's commands may have run.
    func withDedicatedConnection<Result>(
        slot: Int?, _ body: (RedisConnection) async throws(RedisError) -> Result
    ) async throws(RedisError) -> Result {
        let deadline = ContinuousClock.now + configuration.connectTimeout
        var attempts = 0
        while true {
            let (_, client) = try await target(slot: slot)
            var entered = false
            do throws(RedisError) {
                return try await client.withDedicatedConnection { connection throws(RedisError) in
                    entered = true
                    return try await body(connection)
                }
            } catch {
                let redirected = error.serverErrorPrefix == "MOVED" || error.serverErrorPrefix == "ASK"
                if entered && !redirected && error.code == .server { throw error }
                scheduleRefresh()
                attempts += 1
                guard !entered, await Self.pause(attempt: attempts, until: deadline) else { throw error }
                await refresh()
            }
        }
    }

    func send(_ command: RedisCommand, to node: RedisClusterNode, timeout: Duration?) async throws(RedisError) -> RESPValue {
        guard case .tcp(let host, let port) = node.endpoint else {
            throw RedisError(.clusterTopology, message: "\(node) is not a cluster node address")
        }
        let client = try self.client(for: RedisClusterAddress(host: host, port: port))
        do throws(RedisError) {
            return try await client.send(command, timeout: timeout)
        } catch {
            if error.code != .server { scheduleRefresh() }
            throw error
        }
    }
}
