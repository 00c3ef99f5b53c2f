import Foundation

/// One file of the history log.
///
/// Named `history-<UTC yyyyMMdd'T'HHmmss'Z'>-<archiverId>-<sequence>.jsonl`, e.g.
/// `history-20261129T010203Z-3f9c2a71d0b4-000042.jsonl`: the name starts with the
/// time the file was created, so names sort by time; each archiver writes only
/// its own files (its identity is in the name) and numbers them in order.
/// A rotated file may be compressed: the same name plus `.gz`, beside a
/// sidecar index `<stem>.index.json` (see `HistoryIndex`).
public struct HistoryFile: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The file name.
    public var name: String
    /// The full path.
    public var path: String
    /// When the archiver created it (whole seconds, UTC).
    public var createdAt: Date
    /// The identity of the archiver that writes it.
    public var archiverId: String
    /// The archiver's sequence number of this file (1, 2, ...).
    public var sequence: Int
    /// Whether this is a gzip-compressed rotated file (`.jsonl.gz`).
    public var isCompressed: Bool

    static let prefix = "history-"
    static let suffix = ".jsonl"
    static let compressedSuffix = ".jsonl.gz"
    static let indexSuffix = ".index.json"

    /// Parses a file name; `nil` for files that are not history files.
    init?(name: String, directory: String) {
        guard name.hasPrefix(Self.prefix) else { return nil }
        let isCompressed = name.hasSuffix(Self.compressedSuffix)
        guard isCompressed || name.hasSuffix(Self.suffix) else { return nil }
        let suffixLength = (isCompressed ? Self.compressedSuffix : Self.suffix).utf8.count
        let body = Array(name.utf8.dropFirst(Self.prefix.utf8.count).dropLast(suffixLength))
        // 16 bytes of time, "-", identity, "-", sequence
        guard body.count >= 16 + 1 + 1 + 1 + 1, body[16] == UInt8(ascii: "-"),
            let createdAt = Self.parseTime(body[0..<16]),
            let lastDash = body.lastIndex(of: UInt8(ascii: "-")), lastDash > 17,
            let sequence = Int(String(decoding: body[(lastDash + 1)...], as: UTF8.self)), sequence >= 0
        else { return nil }
        let archiverId = String(decoding: body[17..<lastDash], as: UTF8.self)
        guard ArchiverConfiguration.isValidArchiverId(archiverId) else { return nil }
        self.name = name
        self.path = (directory as NSString).appendingPathComponent(name)
        self.createdAt = createdAt
        self.archiverId = archiverId
        self.sequence = sequence
        self.isCompressed = isCompressed
    }

    /// The name without `.jsonl` / `.jsonl.gz`.
    var stem: String {
        String(name.dropLast((isCompressed ? Self.compressedSuffix : Self.suffix).count))
    }

    /// The sidecar index of this file (written when it is rotated).
    var indexPath: String {
        ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(stem + Self.indexSuffix)
    }

    /// The compressed twin of a plain file.
    var compressed: HistoryFile {
        var twin = self
        twin.isCompressed = true
        twin.name = stem + Self.compressedSuffix
        twin.path = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(twin.name)
        return twin
    }

    /// The name of a new file.
    static func name(createdAt: Date, archiverId: String, sequence: Int) -> String {
        prefix + formatTime(createdAt) + "-" + archiverId + "-" + String(format: "%06d", sequence) + suffix
    }

    /// The UTC day (days since 1970-01-01) of a time.
    static func utcDay(_ date: Date) -> Int {
        Int((date.timeIntervalSince1970 / 86_400).rounded(.down))
    }

    /// The UTC day the file was created on.
    var utcDay: Int { Self.utcDay(createdAt) }

    public var description: String { name }

    public static func < (lhs: HistoryFile, rhs: HistoryFile) -> Bool {
        (lhs.createdAt, lhs.archiverId, lhs.sequence) < (rhs.createdAt, rhs.archiverId, rhs.sequence)
    }

    /// The history files in `directory`, oldest first. When a file exists both
    /// plain and compressed (the compressor stopped between its rename and its
    /// unlink), only the plain one is listed: it is the original.
    static func list(directory: String) throws(ArchiveError) -> [HistoryFile] {
        let files = try listDirectory(directory).compactMap { HistoryFile(name: $0, directory: directory) }
        let plain = Set(files.filter { !$0.isCompressed }.map(\.stem))
        return files.filter { !$0.isCompressed || !plain.contains($0.stem) }.sorted()
    }

    // MARK: yyyyMMdd'T'HHmmss'Z', without a formatter (Howard Hinnant's civil-date algorithms)

    static func formatTime(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let days = seconds.floorDivided(by: 86_400)
        let secondOfDay = seconds.floorModulo(86_400)
        let (year, month, day) = CivilCalendar.civil(fromDays: days)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ", year, month, day, secondOfDay / 3600, (secondOfDay / 60) % 60, secondOfDay % 60
        )
    }

    static func parseTime(_ bytes: ArraySlice<UInt8>) -> Date? {
        let text = Array(bytes)
        guard text.count == 16, text[8] == UInt8(ascii: "T"), text[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in text[range] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8), let hour = number(9..<11),
            let minute = number(11..<13), let second = number(13..<15), (1...12).contains(month), (1...31).contains(day),
            hour < 24, minute < 60, second < 61
        else { return nil }
        let days = CivilCalendar.days(fromCivilYear: year, month: month, day: day)
        return Date(timeIntervalSince1970: Double(days * 86_400 + hour * 3600 + minute * 60 + second))
    }
}
