import ConveyorRedis
import Foundation

/// One page of a job list: see ``JobInspector/page(state:partition:offset:limit:type:userId:newestFirst:scanLimit:)``.
public struct JobPage: Sendable, Hashable {
    /// The matching jobs of this page, in list order.
    public var jobs: [WorkerJob]
    /// The index to ask for the next page, `nil` at the end of the list.
    public var nextOffset: Int?
    /// The number of jobs in this state in the partition (filters not applied).
    public var total: Int
    /// Index entries examined for this page (more than `jobs.count` when filtering).
    public var examined: Int
}

extension JobInspector {
    /// Up to `limit` jobs of one state in one partition, read by index
    /// (`ZRANGE start stop`), so a page costs the same with a million jobs
    /// as with ten: pending jobs in due order, running in start order,
    /// finished in removal order; `newestFirst` reverses it.
    ///
    /// With a `type` or `userId` filter the page examines the index from
    /// `offset` on until it has `limit` matches or has examined `scanLimit`
    /// entries, and ``JobPage/nextOffset`` says where it stopped; a pending
    /// job of a (type, user) pair is found through the pair index at once.
    /// - Throws: ``ConveyorError`` `invalidArgument` for a partition out of
    ///   range, a negative offset, a limit outside 1 ... 1000 or a scan limit
    ///   outside 1 ... 100000; `redis`.
    public func page(
        state: WorkerJob.State, partition index: Int = 0, offset: Int = 0, limit: Int = 50, type: String? = nil,
        userId: Int? = nil, newestFirst: Bool = false, scanLimit: Int = 5000
    ) async throws(ConveyorError) -> JobPage {
        guard (0..<keys.partitionCount).contains(index) else {
            throw ConveyorError(.invalidArgument, "partition must be in 0..<\(keys.partitionCount), got \(index)")
        }
        guard offset >= 0, (1...1000).contains(limit), (1...100_000).contains(scanLimit) else {
            throw ConveyorError(.invalidArgument, "offset must be ≥ 0, limit 1...1000 and scanLimit 1...100000")
        }
        try await checkLayout()
        let partition = keys.partition(index)
        let key =
            switch state {
            case .pending: partition.due
            case .running: partition.running
            case .finished: partition.finished
            }
        do {
            let total = try await client.send(RedisCommand("ZCARD", key: key)).int ?? 0
            if state == .pending, let type, let userId {
                guard keys.partition(type: type, userId: userId) == partition, offset == 0,
                    let id = try await client.send(RedisCommand("HGET", key: partition.pending, "\(type):\(userId)")).int
                else { return JobPage(jobs: [], nextOffset: nil, total: total, examined: 0) }
                return JobPage(jobs: try await jobs(ids: [id]), nextOffset: nil, total: total, examined: 1)
            }
            let filtered = type != nil || userId != nil
            var result: [WorkerJob] = []
            var position = offset
            while result.count < limit, position - offset < (filtered ? scanLimit : limit) {
                let chunk = filtered ? min(500, scanLimit - (position - offset)) : limit
                let command = RedisCommand(newestFirst ? "ZREVRANGE" : "ZRANGE", key: key, position, position + chunk - 1)
                let ids = try await client.send(command).array?.compactMap(\.int) ?? []
                if ids.isEmpty { break }
                for job in try await jobs(ids: ids) {
                    if (type == nil || job.type == type) && (userId == nil || job.userId == userId) {
                        result.append(job)
                    }
                }
                position += ids.count
                if result.count >= limit {
                    // Stop at the last match, so the next page starts right after it.
                    let overshoot = result.count - limit
                    result.removeLast(overshoot)
                    if overshoot > 0, let last = result.last, let at = ids.firstIndex(of: last.id) {
                        position = position - ids.count + at + 1
                    }
                    break
                }
                if ids.count < chunk { break }
            }
            let next = position < total ? position : nil
            return JobPage(jobs: result, nextOffset: next, total: total, examined: position - offset)
        } catch let error as ConveyorError {
            throw error
        } catch let error as RedisError {
            throw ConveyorError(error)
        } catch {
            throw ConveyorError(.redis, "\(error)")
        }
    }
}
