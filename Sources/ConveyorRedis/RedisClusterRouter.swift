import Logging
import NIOCore
import Synchronization

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

    func applyMoved(slot: Int, to address: RedisClusterAddress) {
        state.withLock { state in state.map?.move(slot: slot, to: address) }
        scheduleRefresh()
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
