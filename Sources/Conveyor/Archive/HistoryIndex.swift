import Foundation

/// The sidecar summary of one rotated history file, `<stem>.index.json`.
///
/// Written when a file is rotated (with its compression), it splits the file
/// into blocks of about 1 MiB of lines and says, per block, which ids, users,
/// `finished` and `archivedAt` times and job types it holds. A query reads
/// only the blocks that can match: an `--id` lookup decompresses one block of
/// one file, a time range only the blocks of that range. In a compressed file
/// each block is one gzip member, so it can be read on its own.
///
/// An index is used only while it describes the file beside it (name and
/// size); otherwise the file is read whole, so a missing or stale index can
/// cost time but never records.
struct HistoryIndex: Codable, Sendable, Equatable {
    /// The data file this describes (`.jsonl` or `.jsonl.gz`).
    var file: String
    /// Its size in bytes.
    var fileSize: Int
    /// Whether each block is a gzip member.
    var compressed: Bool
    /// The bytes of records (uncompressed).
    var dataSize: Int
    var records: Int
    var blocks: [Block]
    var version = 1

    /// Types per block beyond this are not listed (the block may hold any type).
    static let maxTypesPerBlock = 64
    /// Uncompressed bytes per block (a block ends at the first line end after this).
    static let blockSize = 1 << 20

    struct Block: Codable, Sendable, Equatable {
        /// Where the block starts in the file, and its length there.
        var offset: Int
        var length: Int
        /// Its uncompressed length and CRC-32 (checked when the file is compressed).
        var size: Int
        var crc32: UInt
        var records: Int
        var minId: Int?
        var maxId: Int?
        var minUserId: Int?
        var maxUserId: Int?
        /// ISO 8601 UTC with milliseconds, compared as text.
        var minFinished: String?
        var maxFinished: String?
        var minArchivedAt: String?
        var maxArchivedAt: String?
        /// The job types in the block; `nil` when there are too many, or a
        /// type that needs JSON escapes.
        var types: [String]?
        /// Whether every line's fields could be read (else the block can match anything).
        var complete: Bool
    }

    /// Summarizes the lines of `buffer` (complete lines, each ending in `\n`).
    static func summarize(_ buffer: UnsafeBufferPointer<UInt8>, offset: Int, length: Int) -> Block {
        var block = Block(
            offset: offset, length: length, size: buffer.count, crc32: Gzip.crc32(UnsafeRawBufferPointer(buffer)), records: 0,
            types: [], complete: true
        )
        var types = Set<String>()
        var tooManyTypes = false
        var minFinished: Range<Int>?, maxFinished: Range<Int>?, minArchived: Range<Int>?, maxArchived: Range<Int>?
        var start = 0
        while start < buffer.count {
            var end = start
            while end < buffer.count, buffer[end] != 0x0A { end += 1 }
            defer { start = end + 1 }
            guard end > start else { continue }
            block.records += 1
            guard let fields = HistoryLineFields.parse(buffer, start, end), let id = fields.id, let userId = fields.userId else {
                block.complete = false
                continue
            }
            block.minId = Swift.min(block.minId ?? id, id)
            block.maxId = Swift.max(block.maxId ?? id, id)
            block.minUserId = Swift.min(block.minUserId ?? userId, userId)
            block.maxUserId = Swift.max(block.maxUserId ?? userId, userId)
            if let finished = fields.finished {
                if minFinished.map({ buffer.compare(finished, buffer.bytes($0)) < 0 }) ?? true { minFinished = finished }
                if maxFinished.map({ buffer.compare(finished, buffer.bytes($0)) > 0 }) ?? true { maxFinished = finished }
            }
            if let archived = fields.archivedAt {
                if minArchived.map({ buffer.compare(archived, buffer.bytes($0)) < 0 }) ?? true { minArchived = archived }
                if maxArchived.map({ buffer.compare(archived, buffer.bytes($0)) > 0 }) ?? true { maxArchived = archived }
            }
            if !tooManyTypes {
                if let type = fields.type, !buffer[type].contains(UInt8(ascii: "\\")) {
                    types.insert(buffer.string(type))
                    if types.count > maxTypesPerBlock { tooManyTypes = true }
                } else {
                    tooManyTypes = true
                }
            }
        }
        block.minFinished = minFinished.map(buffer.string)
        block.maxFinished = maxFinished.map(buffer.string)
        block.minArchivedAt = minArchived.map(buffer.string)
        block.maxArchivedAt = maxArchived.map(buffer.string)
        block.types = tooManyTypes ? nil : types.sorted()
        return block
    }

    /// The first line of the sidecar: everything but the blocks, plus their
    /// union, so that a query can rule a whole file out by decoding one short
    /// line (a query looks at every file's index; decoding every block list of
    /// a large history would cost more than the lookup itself).
    struct Header: Codable, Sendable, Equatable {
        var file: String
        var fileSize: Int
        var compressed: Bool
        var dataSize: Int
        var records: Int
        var version: Int
        var summary: Block
    }

    var header: Header {
        Header(file: file, fileSize: fileSize, compressed: compressed, dataSize: dataSize, records: records, version: version, summary: summary)
    }

    /// The union of the blocks' summaries.
    var summary: Block {
        var union = Block(offset: 0, length: fileSize, size: dataSize, crc32: 0, records: records, types: [], complete: true)
        var types = Set<String>()
        for block in blocks {
            union.complete = union.complete && block.complete
            func merge<T: Comparable>(_ a: T?, _ b: T?, _ pick: (T, T) -> T) -> T? { a.map { x in b.map { pick(x, $0) } ?? x } ?? b }
            union.minId = merge(union.minId, block.minId, Swift.min)
            union.maxId = merge(union.maxId, block.maxId, Swift.max)
            union.minUserId = merge(union.minUserId, block.minUserId, Swift.min)
            union.maxUserId = merge(union.maxUserId, block.maxUserId, Swift.max)
            union.minFinished = merge(union.minFinished, block.minFinished, Swift.min)
            union.maxFinished = merge(union.maxFinished, block.maxFinished, Swift.max)
            union.minArchivedAt = merge(union.minArchivedAt, block.minArchivedAt, Swift.min)
            union.maxArchivedAt = merge(union.maxArchivedAt, block.maxArchivedAt, Swift.max)
            if let blockTypes = block.types, union.types != nil {
                types.formUnion(blockTypes)
            } else {
                union.types = nil
            }
        }
        if union.types != nil { union.types = types.count <= 4 * Self.maxTypesPerBlock ? types.sorted() : nil }
        return union
    }

    /// The sidecar's bytes: the header line, then one line per block.
    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var bytes = Array(try encoder.encode(header))
        bytes.append(0x0A)
        for block in blocks {
            bytes += try encoder.encode(block)
            bytes.append(0x0A)
        }
        return bytes
    }

    /// The index beside `file`, if there is one and it describes that file as it is now.
    static func load(for file: HistoryFile, fileSize: Int) -> HistoryIndex? {
        guard let data = FileManager.default.contents(atPath: file.indexPath) else { return nil }
        let lines = data.split(separator: 0x0A)
        let decoder = JSONDecoder()
        guard let first = lines.first, let header = try? decoder.decode(Header.self, from: first),
            header.version == 1, header.file == file.name, header.fileSize == fileSize, header.compressed == file.isCompressed
        else { return nil }
        var blocks: [Block] = []
        for line in lines.dropFirst() {
            guard let block = try? decoder.decode(Block.self, from: line) else { return nil }
            blocks.append(block)
        }
        return HistoryIndex(
            file: header.file, fileSize: header.fileSize, compressed: header.compressed, dataSize: header.dataSize, records: header.records,
            blocks: blocks, version: header.version
        )
    }

    /// The blocks of `file` that may match `query`: `nil` without a valid
    /// index, none when the header rules the whole file out (then no block
    /// line is decoded).
    static func blocks(for file: HistoryFile, fileSize: Int, matching query: CompiledHistoryQuery) -> [Block]? {
        guard let data = FileManager.default.contents(atPath: file.indexPath) else { return nil }
        let decoder = JSONDecoder()
        guard let end = data.firstIndex(of: 0x0A), let header = try? decoder.decode(Header.self, from: data[..<end]),
            header.version == 1, header.file == file.name, header.fileSize == fileSize, header.compressed == file.isCompressed
        else { return nil }
        guard header.summary.mayMatch(query) else { return [] }
        var blocks: [Block] = []
        for line in data[(end + 1)...].split(separator: 0x0A) {
            guard let block = try? decoder.decode(Block.self, from: line) else { return nil }
            if block.mayMatch(query) { blocks.append(block) }
        }
        return blocks
    }
}

extension HistoryIndex.Block {
    /// Whether a record of this block can match `query` (`false` only when none can).
    func mayMatch(_ query: CompiledHistoryQuery) -> Bool {
        guard complete else { return true }
        if records == 0 { return false }
        if let id = query.id {
            guard let minId, let maxId, minId <= id, id <= maxId else { return false }
        }
        if let userId = query.userId {
            guard let minUserId, let maxUserId, minUserId <= userId, userId <= maxUserId else { return false }
        }
        if let type = query.typeText, let types, !types.contains(type) { return false }
        if query.since != nil || query.until != nil {
            guard let minFinished, let maxFinished else { return false }
            if let since = query.sinceText, maxFinished < since { return false }
            if let until = query.untilText, minFinished >= until { return false }
        }
        return true
    }
}
