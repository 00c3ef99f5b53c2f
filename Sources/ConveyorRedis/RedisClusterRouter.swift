import Logging
import NIOCore
import Synchronization

/// A cluster node's address as the cluster announces it (or a `MOVED` names it).
struct RedisClusterAddress: Hashable, Sendable, CustomStringConvertible {
    var host: String
    var port: Int

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses the `host:port` of a `MOVED`/`ASK` reply; an empty host means
    /// the node that replied (the cluster does not know the target's address).
    init?(redirectTarget text: Substring, replyingNode: RedisClusterAddress) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        self.host = host.isEmpty ? replyingNode.host : String(host)
        self.port = port
    }

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// Which master serves each hash slot: a flat 16,384-entry array of small
/// indices into `masters`, so routing is one array read under the router's lock.
struct RedisClusterSlotMap: Sendable {
    struct Master: Sendable {
        var id: String
        var address: RedisClusterAddress
        /// The announced host name (`CLUSTER SHARDS`), checked by TLS when set.
        var hostname: String?
        var slotRanges: [ClosedRange<Int>]
    }

    static let noOwner = UInt16.max
    var masters: [Master]
    var owners: [UInt16]

    init(masters: [Master]) {
        self.masters = masters
        owners = Array(repeating: Self.noOwner, count: RedisCluster.slotCount)
        for (index, master) in masters.enumerated() {
            for range in master.slotRanges where range.lowerBound >= 0 && range.upperBound < RedisCluster.slotCount {
                for slot in range { owners[slot] = UInt16(index) }
            }
        }
    }

    /// Applies a `MOVED`: `slot` is now served by `address`.
    mutating func move(slot: Int, to address: RedisClusterAddress) {
        guard (0..<RedisCluster.slotCount).contains(slot) else { return }
        if let index = masters.firstIndex(where: { $0.address == address }) {
            owners[slot] = UInt16(index)
        } else {
            masters.append(Master(id: "?", address: address, hostname: nil, slotRanges: []))
            owners[slot] = UInt16(masters.count - 1)
        }
    }

    /// Parses a `CLUSTER SHARDS` reply (Redis 7; RESP2: each shard and node a flat key/value array).
    static func parseShards(_ reply: RESPValue, queried: RedisClusterAddress, tls: Bool) -> RedisClusterSlotMap? {
        guard let shards = reply.array else { return nil }
        var masters: [Master] = []
        for shard in shards {
            let fields = dictionary(shard)
            guard let slotValues = fields["slots"]?.array, !slotValues.isEmpty, let nodes = fields["nodes"]?.array else { continue }
            var ranges: [ClosedRange<Int>] = []
            var index = 0
            while index + 1 < slotValues.count {
                if let low = slotValues[index].int, let high = slotValues[index + 1].int, low <= high { ranges.append(low...high) }
                index += 2
            }
            // A shard lists its failed old master next to the promoted one for a while: prefer an online master.
            let candidates = nodes.map(dictionary).filter { $0["role"]?.string == "master" }
            guard let master = candidates.first(where: { $0["health"]?.string == "online" }) ?? candidates.first,
                let id = master["id"]?.string
            else { continue }
            let port = (tls ? master["tls-port"]?.int : nil) ?? master["port"]?.int
            guard let port else { continue }
            var host = master["endpoint"]?.string ?? ""
            if host.isEmpty || host == "?" { host = master["ip"]?.string ?? "" }
            if host.isEmpty || host == "?" { host = queried.host }
            let hostname = master["hostname"]?.string.flatMap { $0.isEmpty ? nil : $0 }
            masters.append(Master(id: id, address: RedisClusterAddress(host: host, port: port), hostname: hostname, slotRanges: ranges))
        }
        return masters.isEmpty ? nil : RedisClusterSlotMap(masters: merged(masters))
    }

    /// Parses a `CLUSTER SLOTS` reply: `[start, end, [ip, port, id, ...], replicas...]` per range.
    static func parseSlots(_ reply: RESPValue, queried: RedisClusterAddress) -> RedisClusterSlotMap? {
        guard let entries = reply.array else { return nil }
        var masters: [Master] = []
        for entry in entries {
            guard let items = entry.array, items.count >= 3, let low = items[0].int, let high = items[1].int, low <= high,
                let node = items[2].array, node.count >= 2, let port = node[1].int
            else { continue }
            var host = node[0].string ?? ""
            if host.isEmpty || host == "?" { host = queried.host }
            let id = node.count >= 3 ? node[2].string ?? "?" : "?"
            masters.append(Master(id: id, address: RedisClusterAddress(host: host, port: port), hostname: nil, slotRanges: [low...high]))
        }
        return masters.isEmpty ? nil : RedisClusterSlotMap(masters: merged(masters))
    }

    /// One entry per master, its ranges sorted.
    private static func merged(_ masters: [Master]) -> [Master] {
        var result: [Master] = []
        for master in masters {
            if let index = result.firstIndex(where: { $0.address == master.address }) {
                result[index].slotRanges += master.slotRanges
            } else {
                result.append(master)
            }
        }
        for index in result.indices { result[index].slotRanges.sort { $0.lowerBound < $1.lowerBound } }
        return result
    }

    private static func dictionary(_ value: RESPValue) -> [String: RESPValue] {
        guard let items = value.array else { return [:] }
        var fields: [String: RESPValue] = [:]
        var index = 0
        while index + 1 < items.count {
            if let key = items[index].string { fields[key] = items[index + 1] }
            index += 2
        }
        return fields
    }
}

/// Routes commands of a ``RedisClient`` configured with a cluster endpoint:
/// one pooled single-node ``RedisClient`` per master, a slot map from
/// `CLUSTER SHARDS` (or `CLUSTER SLOTS`), redirects and re-discovery.
///
/// The slot map lives in a `Mutex` and is only read or patched while it is
/// held; no lock is held across an `await`.
final class RedisClusterRouter: Sendable {
    let configuration: RedisConfiguration
    let seeds: [RedisClusterAddress]
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    /// How old the slot map may get before a command schedules a background refresh.
    let refreshInterval: Duration = .seconds(30)
    /// Minimum spacing between two discoveries.
    let refreshSpacing: Duration = .milliseconds(100)
    static let maxRedirects = 5

    private struct State {
        var map: RedisClusterSlotMap?
        var mapTime = ContinuousClock.now
        var pools: [RedisClusterAddress: RedisClient] = [:]
        var refresh: Task<Void, Never>?
        var lastRefreshStart: ContinuousClock.Instant?
        var lastError: RedisError?
        /// Pools of nodes that left the map, shut down after a grace period (or with the router).
        var retired: [RedisClient] = []
        var nextMaster = 0
        var isShutDown = false
    }

    private let state = Mutex(State())

    init(configuration: RedisConfiguration, seeds: [RedisClusterSeed], eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.seeds = seeds.map { RedisClusterAddress(host: $0.host, port: $0.port) }
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    // MARK: Topology

    /// The configuration of one node: the cluster's settings (credentials,
    /// TLS files, pool size, timeouts) with that node's address. TLS checks
    /// the explicitly configured name, else the announced host name, else the address.
    func nodeConfiguration(_ address: RedisClusterAddress, hostname: String?) -> RedisConfiguration {
        var node = configuration
        node.endpoint = .tcp(host: address.host, port: address.port)
        node.database = 0
        if case .enabled(var settings) = configuration.tls {
            settings.serverHostname = settings.serverHostname ?? hostname
            node.tls = .enabled(settings)
        }
        return node
    }

    private static func pool(
        _ address: RedisClusterAddress, in state: inout State, make: (RedisClusterAddress) -> RedisClient
    ) -> RedisClient {
        if let client = state.pools[address] { return client }
        let client = make(address)
        state.pools[address] = client
        return client
    }

    private func makeClient(_ address: RedisClusterAddress, hostname: String? = nil) -> RedisClient {
        RedisClient(configuration: nodeConfiguration(address, hostname: hostname), eventLoopGroup: eventLoopGroup, logger: logger)
    }

    /// The pooled client of a node.
    func client(for address: RedisClusterAddress) throws(RedisError) -> RedisClient {
        try state.withLock { state throws(RedisError) in
            if state.isShutDown { throw Self.shutDownError }
            let hostname = state.map?.masters.first { $0.address == address }?.hostname
            return Self.pool(address, in: &state) { makeClient($0, hostname: hostname) }
        }
    }

    /// Waits for a discovery: the one in flight, or a new one (at most one
    /// per ``refreshSpacing``).
    func refresh() async {
        await startRefresh()?.value
    }

    /// Starts a discovery in the background unless one is in flight.
    func scheduleRefresh() {
        _ = startRefresh()
    }

    private func startRefresh() -> Task<Void, Never>? {
        state.withLock { state in
            if state.isShutDown { return nil }
            if let task = state.refresh { return task }
            let wait: Duration
            if let last = state.lastRefreshStart {
                wait = max(.zero, refreshSpacing - (ContinuousClock.now - last))
            } else {
                wait = .zero
            }
            // The task needs the lock to finish, so it is stored before it can clear itself.
            let task = Task { await self.discoverAndInstall(after: wait) }
            state.refresh = task
            return task
        }
    }

    private func discoverAndInstall(after wait: Duration) async {
        if wait > .zero { try? await Task.sleep(for: wait) }
        state.withLock { $0.lastRefreshStart = .now }
        let result = await discover()
        let retired: [RedisClient] = state.withLock { state in
            state.refresh = nil
            switch result {
            case .failure(let error):
                state.lastError = error
                return []
            case .success(let map):
                state.map = map
                state.mapTime = .now
                state.lastError = nil
                let current = Set(map.masters.map(\.address))
                let gone = state.pools.keys.filter { !current.contains($0) }
                let retired = gone.compactMap { state.pools.removeValue(forKey: $0) }
                state.retired += retired
                return retired
            }
        }
        if case .success(let map) = result {
            logger.debug(
                "redis cluster topology",
                metadata: ["conveyor.redis.masters": "\(map.masters.map { "\($0.address) \($0.slotRanges.count) ranges" })"]
            )
        }
        // Commands already on those connections get their replies first.
        for client in retired {
            let grace = configuration.commandTimeout
            Task {
                try? await Task.sleep(for: grace)
                state.withLock { state in state.retired.removeAll { $0 === client } }
                await client.shutdown()
            }
        }
    }

    /// Reads the topology from the first node that answers: the known masters, then the seeds.
    private func discover() async -> Result<RedisClusterSlotMap, RedisError> {
        let known: [RedisClusterAddress] = state.withLock { $0.map?.masters.map(\.address) ?? [] }
        var candidates: [RedisClusterAddress] = []
        for address in known + seeds where !candidates.contains(address) { candidates.append(address) }
        let tls = configuration.tls != .disabled
        var lastError: RedisError?
        for address in candidates {
            do throws(RedisError) {
                let client = try self.client(for: address)
                let timeout = configuration.connectTimeout
                let shards = try await client.pipeline([RedisCommand("CLUSTER", "SHARDS")], timeout: timeout)[0]
                if case .error(let message) = shards {
                    // Redis before 7 has no CLUSTER SHARDS.
                    guard message.uppercased().contains("UNKNOWN") || message.uppercased().contains("SUBCOMMAND") else {
                        throw RedisError.server(message, command: "CLUSTER SHARDS")
                    }
                    let slots = try await client.send(RedisCommand("CLUSTER", "SLOTS"), timeout: timeout)
                    if let map = RedisClusterSlotMap.parseSlots(slots, queried: address) { return .success(map) }
                } else if let map = RedisClusterSlotMap.parseShards(shards, queried: address, tls: tls) {
                    return .success(map)
                }
                lastError = RedisError(.clusterTopology, message: "\(address) reported no slots")
            } catch {
                lastError = error
            }
        }
        let tried = candidates.map(\.description).joined(separator: ", ")
        var error = RedisError(
            .clusterTopology,
            message: "could not read the cluster topology from any of \(tried)" + (lastError.map { " (last error: \($0.message))" } ?? "")
        )
        error.underlying = lastError?.underlying
        return .failure(error)
    }

    /// The masters as last discovered (discovering first if needed).
    func masters() async throws(RedisError) -> [RedisClusterNode] {
        _ = try await target(slot: nil)
        return state.withLock { state in
            (state.map?.masters ?? []).filter { !$0.slotRanges.isEmpty }.map {
                RedisClusterNode(id: $0.id, endpoint: .tcp(host: $0.address.host, port: $0.address.port), slotRanges: $0.slotRanges)
            }
        }
    }

    /// The node serving `slot` (any master for `nil`) and its pool.
    func target(slot: Int?) async throws(RedisError) -> (RedisClusterAddress, RedisClient) {
        var discovered = false
        while true {
            enum Lookup {
                case found(RedisClusterAddress, RedisClient, stale: Bool)
                case noMap
            }
            let lookup: Lookup = try state.withLock { state throws(RedisError) in
                if state.isShutDown { throw Self.shutDownError }
                guard let map = state.map, !map.masters.isEmpty else { return .noMap }
                var index = Int(slot.map { map.owners[$0] } ?? RedisClusterSlotMap.noOwner)
                if index == Int(RedisClusterSlotMap.noOwner) {
                    // No key, or a slot nobody claimed: any master (it redirects or says CLUSTERDOWN).
                    index = state.nextMaster % map.masters.count
                    state.nextMaster &+= 1
                }
                let master = map.masters[index]
                let client = Self.pool(master.address, in: &state) { makeClient($0, hostname: master.hostname) }
                return .found(master.address, client, stale: ContinuousClock.now - state.mapTime > refreshInterval)
            }
            switch lookup {
            case .found(let address, let client, let stale):
                if stale { scheduleRefresh() }
                return (address, client)
            case .noMap:
                if discovered {
                    throw state.withLock { $0.lastError }
                        ?? RedisError(.clusterTopology, message: "the cluster topology is unknown")
                }
                await refresh()
                discovered = true
            }
        }
    }

    private func applyMoved(slot: Int, to address: RedisClusterAddress) {
        state.withLock { state in state.map?.move(slot: slot, to: address) }
        scheduleRefresh()
    }

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
                    if asking != nil {
                        // One write: no other caller's command can come between ASKING and the command.
                        reply = try await connection.pipeline([RedisCommand("ASKING"), command], timeout: timeout)[1]
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
                return reply
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
                guard await Self.pause(attempt: attempts, until: deadline) else { return reply }
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
            replies[index] = try await sendOne(commands[index], slot: slots[index], timeout: timeout, deadline: deadline)
        }
        return replies.map { $0! }
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

    // MARK: Lifecycle

    private static let shutDownError = RedisError(.poolShutDown, message: "the Redis client has been shut down")

    func shutdown() async {
        let (clients, task) = state.withLock { state in
            state.isShutDown = true
            let clients = Array(state.pools.values) + state.retired
            state.pools.removeAll()
            state.retired.removeAll()
            let task = state.refresh
            state.refresh = nil
            return (clients, task)
        }
        task?.cancel()
        for client in clients { await client.shutdown() }
    }
}

extension RESPValue {
    var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }
}
