import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What one maintenance round of an archiver did to its history directory,
/// and how much room is left.
public struct HistoryMaintenanceReport: Sendable, Hashable {
    /// Files compressed (their new names).
    public var compressed: [String] = []
    /// Rotated plain files given an index (compression off).
    public var indexed: [String] = []
    /// Files deleted by retention.
    public var deleted: [String] = []
    /// What went wrong (the round goes on with the next file).
    public var failures: [String] = []
    /// Bytes of history files and their indexes after the round.
    public var historyBytes = 0
    /// Free bytes of the directory's file system (for unprivileged users), if known.
    public var freeBytes: Int?
    /// Size of the directory's file system, if known.
    public var totalBytes: Int?
    /// Finished jobs in Redis waiting to be archived (or held in a batch), if known.
    public var backlog: Int?

    /// Creates an empty report.
    public init() {}
}

/// Compression, indexing and retention of a history directory. Blocking.
///
/// Only rotated files are touched: a file is rotated once its identity has a
/// file with a higher sequence number, and no archiver ever appends to it
/// again. Retention never deletes the newest files of an identity that hold
/// its last ``protectedRecords`` records: an archiver that resumes a claimed
/// batch (at most 1 000 jobs) looks for it among the last records of its
/// files, and deleting one of those could make it write a job twice.
enum HistoryMaintenance {
    struct Settings: Sendable {
        var compress: Bool
        var retainDays: Int? = nil
        var retainBytes: Int? = nil
        /// Names this process's temporary files.
        var tag: String
        var now: Date
    }

    static let protectedRecords = 1000

    static func run(directory: String, settings: Settings) -> HistoryMaintenanceReport {
        var report = HistoryMaintenanceReport()
        do {
            try compressRotated(directory: directory, settings: settings, report: &report)
            try removeLeftovers(directory: directory, settings: settings)
            try applyRetention(directory: directory, settings: settings, report: &report)
            report.historyBytes = try historyFiles(directory).reduce(0) { $0 + $1.bytes }
        } catch {
            report.failures.append("\(error)")
        }
        var info = statvfs()
        if statvfs(directory, &info) == 0 {
            report.freeBytes = Int(info.f_bavail) * Int(info.f_frsize)
            report.totalBytes = Int(info.f_blocks) * Int(info.f_frsize)
        }
        return report
    }

    /// Sizes only: history bytes and the file system's free and total bytes.
    static func usage(directory: String) throws(ArchiveError) -> HistoryMaintenanceReport {
        var report = HistoryMaintenanceReport()
        report.historyBytes = try historyFiles(directory).reduce(0) { $0 + $1.bytes }
        var info = statvfs()
        if statvfs(directory, &info) == 0 {
            report.freeBytes = Int(info.f_bavail) * Int(info.f_frsize)
            report.totalBytes = Int(info.f_blocks) * Int(info.f_frsize)
        }
        return report
    }

    private static func compressRotated(directory: String, settings: Settings, report: inout HistoryMaintenanceReport) throws(ArchiveError) {
        let byIdentity = Dictionary(grouping: try HistoryFile.list(directory: directory), by: \.archiverId)
        for files in byIdentity.values {
            let rotated = files.sorted { $0.sequence < $1.sequence }.dropLast()
            for file in rotated where !file.isCompressed {
                do throws(ArchiveError) {
                    if settings.compress {
                        try HistoryCompressor.compress(file, tag: settings.tag)
                        report.compressed.append(file.compressed.name)
                    } else if HistoryIndex.load(for: file, fileSize: fileSize(file.path) ?? -1) == nil {
                        try HistoryCompressor.index(file, tag: settings.tag)
                        report.indexed.append(file.name)
                    }
                } catch where error.errorNumber == ENOENT {
                    continue  // another archiver on this directory did it first
                } catch {
                    report.failures.append("\(error)")
                }
            }
        }
    }

    /// Temporary files of interrupted rounds (this process's, or anyone's
    /// after an hour), and indexes whose file is gone.
    private static func removeLeftovers(directory: String, settings: Settings) throws(ArchiveError) {
        let names = try listDirectory(directory)
        let present = Set(names)
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            if name.hasPrefix(HistoryFile.prefix), let range = name.range(of: ".tmp-") {
                let tag = String(name[range.upperBound...])
                let old = (modificationTime(path) ?? settings.now) < settings.now.addingTimeInterval(-3600)
                if tag == settings.tag || old { unlink(path) }
            } else if name.hasPrefix(HistoryFile.prefix), name.hasSuffix(HistoryFile.indexSuffix) {
                let stem = String(name.dropLast(HistoryFile.indexSuffix.count))
                if !present.contains(stem + HistoryFile.suffix) && !present.contains(stem + HistoryFile.compressedSuffix) {
                    unlink(path)
                }
            }
        }
    }

    private struct Entry {
        var file: HistoryFile
        var bytes: Int
        var modified: Date
    }

    private static func historyFiles(_ directory: String) throws(ArchiveError) -> [Entry] {
        try HistoryFile.list(directory: directory).compactMap { file in
            guard let size = fileSize(file.path) else { return nil }
            return Entry(file: file, bytes: size + (fileSize(file.indexPath) ?? 0), modified: modificationTime(file.path) ?? .distantPast)
        }
    }

    private static func applyRetention(directory: String, settings: Settings, report: inout HistoryMaintenanceReport) throws(ArchiveError) {
        guard settings.retainDays != nil || settings.retainBytes != nil else { return }
        let entries = try historyFiles(directory)  // oldest first
        var protected = Set<String>()
        for files in Dictionary(grouping: entries, by: \.file.archiverId).values {
            var records = 0
            for entry in files.sorted(by: { $0.file.sequence > $1.file.sequence }) {
                protected.insert(entry.file.name)
                records += recordCount(entry.file)
                if records >= protectedRecords { break }
            }
        }
        var total = entries.reduce(0) { $0 + $1.bytes }
        let cutoff = settings.retainDays.map { settings.now.addingTimeInterval(-Double($0) * 86_400) }
        for entry in entries where !protected.contains(entry.file.name) {
            let tooOld = cutoff.map { entry.modified < $0 } ?? false
            let tooBig = settings.retainBytes.map { total > $0 } ?? false
            guard tooOld || tooBig else { continue }
            guard unlink(entry.file.path) == 0 || errno == ENOENT else {
                report.failures.append("\(ArchiveError.io("cannot remove", entry.file.path))")
                continue
            }
            if !entry.file.isCompressed { unlink(entry.file.compressed.path) }  // a twin left by an interrupted compression
            unlink(entry.file.indexPath)
            total -= entry.bytes
            report.deleted.append(entry.file.name)
        }
        if !report.deleted.isEmpty { try HistoryWriter.syncDirectory(directory) }
    }

    /// The records of a file: from its index, else by counting its lines.
    private static func recordCount(_ file: HistoryFile) -> Int {
        if let size = fileSize(file.path), let index = HistoryIndex.load(for: file, fileSize: size) { return index.records }
        guard let data = try? HistoryCompressor.decompressedContents(of: file) else { return 0 }
        return data.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
    }

    static func fileSize(_ path: String) -> Int? {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : nil
    }

    static func modificationTime(_ path: String) -> Date? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
    }
}
