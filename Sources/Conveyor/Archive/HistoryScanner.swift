import CZlib
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One record a scan found: its line as stored, and what the merge and the
/// duplicate rule need.
struct HistoryHit {
    /// The record's JSON, without its `\n`.
    var line: [UInt8]
    /// `archivedAt`, else `finished` (the log's order), as text.
    var sortKey: [UInt8]
    var id: Int
    /// `createdAt` as text: with the id, it identifies a job (see ``HistoryLog``).
    var createdAt: [UInt8]
    /// Whether only a full decode can tell whether it matches.
    var needsDecode: Bool

    func isBefore(_ other: HistoryHit) -> Bool {
        sortKey.lexicographicallyPrecedes(other.sortKey) || (sortKey == other.sortKey && id < other.id)
    }
}

/// The order of a scan.
enum HistoryScanOrder: Sendable {
    case newestFirst, oldestFirst
}

/// One archiver's records in log order, read block by block: a block of an
/// indexed file only when its summary says it can match; a plain file
/// without an index in chunks of whole lines (its torn last line never
/// counts); a compressed file without an index whole. Blocking.
final class HistoryStream {
    private var files: [HistoryFile]
    private let query: CompiledHistoryQuery
    private let order: HistoryScanOrder
    private var source: Source?
    private var hits: [HistoryHit] = []
    /// Files whose index let the scan skip blocks, and bytes read (for measurements).
    private(set) var bytesRead = 0

    private enum Source {
        case blocks(fd: Int32, path: String, compressed: Bool, blocks: [HistoryIndex.Block])
        case plain(fd: Int32, path: String, start: Int, end: Int, carry: [UInt8])
    }

    /// `files`: one archiver's files, in any order.
    init(files: [HistoryFile], query: CompiledHistoryQuery, order: HistoryScanOrder) {
        let ascending = files.sorted { $0.sequence < $1.sequence }
        // popLast() takes the next file to read.
        self.files = order == .newestFirst ? ascending : ascending.reversed()
        self.query = query
        self.order = order
    }

    deinit { closeSource() }

    private func closeSource() {
        switch source {
        case .blocks(let fd, _, _, _)?, .plain(let fd, _, _, _, _)?: close(fd)
        case nil: break
        }
        source = nil
    }

    /// The next matching record in this stream's order, or `nil` at its end.
    func next() throws(ArchiveError) -> HistoryHit? {
        while hits.isEmpty {
            guard let (buffer, range) = try nextBuffer() else { return nil }
            hits = scan(buffer, range)
            if order == .oldestFirst { hits.reverse() }  // popLast() takes the next
        }
        return hits.popLast()
    }

    /// The next buffer and the range of it that holds whole lines, or `nil`
    /// when every file is read. (A range, not a copy: the file being written
    /// is read whole by every query, so its bytes are copied as little as possible.)
    private func nextBuffer() throws(ArchiveError) -> ([UInt8], Range<Int>)? {
        while true {
            if source == nil {
                guard let file = files.popLast() else { return nil }
                try openFile(file)
                continue
            }
            switch source! {
            case .blocks(let fd, let path, let compressed, var blocks):
                guard let block = order == .newestFirst ? blocks.popLast() : blocks.first else {
                    closeSource()
                    continue
                }
                if order == .oldestFirst { blocks.removeFirst() }
                source = .blocks(fd: fd, path: path, compressed: compressed, blocks: blocks)
                let raw = try Self.read(fd: fd, path: path, offset: block.offset, length: block.length)
                bytesRead += raw.count
                if !compressed { return (raw, raw.indices) }
                var data: [UInt8] = []
                try Gzip.decompress(raw, into: &data, expectedSize: block.size)
                return (data, data.indices)
            case .plain(let fd, let path, let start, let end, let carry):
                guard start < end else {
                    closeSource()
                    continue
                }
                let chunk = 8 << 20
                if order == .newestFirst {
                    // [from, end) then the carried start of the line that ends the later chunk.
                    let from = max(start, end - chunk)
                    var data = try Self.read(fd: fd, path: path, offset: from, length: end - from, reserving: carry.count)
                    bytesRead += end - from
                    data.append(contentsOf: carry)
                    guard from > start else {
                        source = .plain(fd: fd, path: path, start: start, end: start, carry: [])
                        return (data, data.indices)
                    }
                    // Bytes before the first `\n` may continue in the previous chunk.
                    guard let newline = data.firstIndex(of: 0x0A) else {
                        source = .plain(fd: fd, path: path, start: start, end: from, carry: data)
                        continue
                    }
                    source = .plain(fd: fd, path: path, start: start, end: from, carry: Array(data[..<newline]))
                    return (data, (newline + 1)..<data.count)
                } else {
                    let to = min(end, start + chunk)
                    var data = carry
                    data.reserveCapacity(carry.count + to - start)
                    data += try Self.read(fd: fd, path: path, offset: start, length: to - start)
                    bytesRead += to - start
                    // `end` is just after a `\n`, so at the end nothing is carried.
                    let complete = data.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
                    source = .plain(fd: fd, path: path, start: to, end: end, carry: Array(data[complete...]))
                    if complete > 0 { return (data, 0..<complete) }
                }
            }
        }
    }

    private func openFile(_ file: HistoryFile) throws(ArchiveError) {
        var file = file
        var fd = open(file.path, O_RDONLY | O_CLOEXEC)
        if fd < 0 && errno == ENOENT && !file.isCompressed {
            // Compressed meanwhile: the compressed twin is the same records.
            file = file.compressed
            fd = open(file.path, O_RDONLY | O_CLOEXEC)
        }
        if fd < 0 {
            if errno == ENOENT { return }  // deleted by retention meanwhile
            throw ArchiveError.io("cannot open", file.path)
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let number = errno
            close(fd)
            throw ArchiveError.io("cannot stat", file.path, errno: number)
        }
        let size = Int(info.st_size)
        if let blocks = HistoryIndex.blocks(for: file, fileSize: size, matching: query) {
            source = .blocks(fd: fd, path: file.path, compressed: file.isCompressed, blocks: blocks)
        } else if file.isCompressed {
            source = .blocks(
                fd: fd, path: file.path, compressed: true,
                blocks: [HistoryIndex.Block(offset: 0, length: size, size: 0, crc32: 0, records: 0, types: nil, complete: false)]
            )
        } else {
            // Only what ends in `\n` now is read: a torn last line is not a record.
            let complete = try HistoryWriter.lengthOfCompleteLines(path: file.path, size: size)
            source = .plain(fd: fd, path: file.path, start: 0, end: complete, carry: [])
        }
    }

    static func read(fd: Int32, path: String, offset: Int, length: Int, reserving extra: Int = 0) throws(ArchiveError) -> [UInt8] {
        var data = [UInt8]()
        data.reserveCapacity(length + extra)
        data.append(contentsOf: repeatElement(0, count: length))
        var done = 0
        while done < length {
            let count = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, length - done, off_t(offset + done)) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.io("cannot read", path)
            }
            if count == 0 { throw ArchiveError(.io, "\(path) is shorter than expected", errorNumber: EIO) }
            done += count
        }
        return data
    }

    /// The matching records of `buffer[range]` (whole lines), in file order.
    private func scan(_ buffer: [UInt8], _ range: Range<Int>) -> [HistoryHit] {
        let query = query
        return buffer.withUnsafeBufferPointer { whole -> [HistoryHit] in
            guard let wholeBase = whole.baseAddress, !range.isEmpty else { return [] }
            let bytes = UnsafeBufferPointer(start: wholeBase + range.lowerBound, count: range.count)
            let base = wholeBase + range.lowerBound
            var found: [HistoryHit] = []
            func lineEnd(from position: Int) -> Int {
                guard let pointer = memchr(base + position, 0x0A, bytes.count - position) else { return bytes.count }
                return UnsafeRawPointer(pointer) - UnsafeRawPointer(base)
            }
            func consider(_ start: Int, _ end: Int) {
                guard end > start else { return }
                let fields = HistoryLineFields.parse(bytes, start, end)
                let match = query.matches(fields, in: bytes)
                guard match != .no else { return }
                let sortKey = fields?.archivedAt ?? fields?.finished
                found.append(
                    HistoryHit(
                        line: Array(bytes[start..<end]), sortKey: sortKey.map(bytes.bytes) ?? [], id: fields?.id ?? 0,
                        createdAt: fields?.createdAt.map(bytes.bytes) ?? [], needsDecode: match == .decode
                    )
                )
            }
            if let needle = query.needle {
                var position = 0
                while position < bytes.count {
                    let hit = needle.withUnsafeBytes { conveyor_memmem(base + position, bytes.count - position, $0.baseAddress, $0.count) }
                    guard let hit else { break }
                    let offset = hit - UnsafeRawPointer(base)
                    // `"id":5` is also the start of `"id":57`: skip those without looking at the line.
                    if query.needleIsNumber, offset + needle.count < bytes.count,
                        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset + needle.count])
                    {
                        position = offset + needle.count
                        continue
                    }
                    var start = offset
                    while start > 0 && bytes[start - 1] != 0x0A { start -= 1 }
                    let end = lineEnd(from: offset)
                    consider(start, end)
                    position = end + 1
                }
            } else {
                var start = 0
                while start < bytes.count {
                    let end = lineEnd(from: start)
                    consider(start, end)
                    start = end + 1
                }
            }
            return found
        }
    }
}
