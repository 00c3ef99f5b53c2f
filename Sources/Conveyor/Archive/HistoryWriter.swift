import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Appends records to one archiver's files of the history log, durably.
/// Taking an identity is in `HistoryWriter+Identity.swift`.
///
/// An archiver *identity* is a lock file `archiver-<id>.lock` in the history
/// directory, holding the directory's random token for that identity. Whoever
/// holds the file's `flock` is that archiver: the kernel drops the lock when
/// the process dies, even by SIGKILL, so a new process can take the identity
/// over and finish its claimed batch exactly once (it has the same files).
///
/// Everything here blocks (open, write, fsync, flock): it runs on the
/// archiver's own I/O thread only.
///
/// `@unchecked Sendable`: an instance is created on the archiver's one-thread
/// `NIOThreadPool` and every later call comes from a closure on that same
/// pool, one at a time (the archiver awaits each call before the next), so
/// its mutable state is never touched by two threads.
final class HistoryWriter: @unchecked Sendable {
    let directory: String
    /// The archiver identity.
    let archiverId: String
    /// The directory's random token for this identity (bound in Redis).
    let token: String
    /// Bytes of a torn last line removed when the identity was opened.
    private(set) var repairedBytes = 0
    private var maxFileSize: Int
    private var lockFD: Int32
    private var current: OpenFile?
    /// A write failed and could not be undone: the current file may end in a torn line.
    private var needsRepair = false
    /// The highest sequence number of this identity's files on disk.
    private var lastSequence: Int

    private struct OpenFile {
        var fd: Int32
        var file: HistoryFile
        var size: Int
        var directorySynced: Bool
    }

    /// Use ``open(directory:archiverId:maxFileSize:)`` or ``lockFreeIdentities(directory:excluding:maxCount:maxFileSize:)``.
    init(directory: String, archiverId: String, token: String, lockFD: Int32) {
        self.directory = directory
        self.archiverId = archiverId
        self.token = token
        self.lockFD = lockFD
        self.maxFileSize = Int.max
        self.lastSequence = 0
    }

    deinit { close() }

    /// Finds this identity's newest file and repairs a torn last line.
    func prepare(maxFileSize: Int) throws(ArchiveError) -> HistoryWriter {
        self.maxFileSize = maxFileSize
        let replacement = self
        let mine = try HistoryFile.list(directory: directory).filter { $0.archiverId == archiverId }
        replacement.lastSequence = mine.map(\.sequence).max() ?? 0
        // A compressed newest file is never appended to (only rotated files are
        // compressed, so this only happens when they were compressed by hand):
        // the next write starts a new file.
        if let newest = mine.max(by: { $0.sequence < $1.sequence }), !newest.isCompressed {
            let fd = systemOpen(newest.path, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { throw ArchiveError.io("cannot open", newest.path) }
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                let number = errno
                systemClose(fd)
                throw ArchiveError.io("cannot stat", newest.path, errno: number)
            }
            replacement.current = OpenFile(fd: fd, file: newest, size: Int(info.st_size), directorySynced: true)
            replacement.repairedBytes = try replacement.repairCurrent()
        }
        return replacement
    }

    /// Releases the identity and closes the files.
    func close() {
        if let current {
            systemClose(current.fd)
            self.current = nil
        }
        if lockFD >= 0 {
            systemClose(lockFD)  // drops the flock
            lockFD = -1
        }
    }

    // MARK: Writing

    /// Appends `bytes` (complete lines) to the current file, rotating first
    /// by size or UTC day, and returns only after `fsync`.
    ///
    /// On failure nothing of `bytes` stays in the log: the file is truncated
    /// back to its previous length. If even that fails, the next call first
    /// cuts the file back to its last complete line.
    /// - Returns: The file written to.
    @discardableResult
    func append(_ bytes: [UInt8], now: Date) throws(ArchiveError) -> HistoryFile {
        if needsRepair { _ = try repairCurrent() }
        if let open = current,
            open.file.utcDay != HistoryFile.utcDay(now) || (open.size > 0 && open.size + bytes.count > maxFileSize)
        {
            systemClose(open.fd)
            current = nil
        }
        if current == nil { try createFile(now: now) }
        guard var open = current else { throw ArchiveError(.io, "no open history file") }
        if !open.directorySynced {
            try Self.syncDirectory(directory)
            open.directorySynced = true
            current = open
        }
        let before = open.size
        do throws(ArchiveError) {
            try Self.writeAll(fd: open.fd, bytes: bytes, path: open.file.path, offset: nil)
            guard fsync(open.fd) == 0 else { throw ArchiveError.io("cannot fsync", open.file.path) }
            try verifyLinked(open)
        } catch {
            if ftruncate(open.fd, off_t(before)) == 0 && fsync(open.fd) == 0 {
                open.size = before
                current = open
            } else {
                needsRepair = true
            }
            throw error
        }
        open.size += bytes.count
        current = open
        return open.file
    }

    private func createFile(now: Date) throws(ArchiveError) {
        let sequence = lastSequence + 1
        let name = HistoryFile.name(createdAt: now, archiverId: archiverId, sequence: sequence)
        guard let file = HistoryFile(name: name, directory: directory) else {
            throw ArchiveError(.invalidArgument, "bad history file name \(name)")
        }
        let fd = systemOpen(file.path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ArchiveError.io("cannot create", file.path) }
        lastSequence = sequence
        needsRepair = false
        current = OpenFile(fd: fd, file: file, size: 0, directorySynced: false)
    }

    /// A file deleted or replaced while open would swallow the records: refuse.
    private func verifyLinked(_ open: OpenFile) throws(ArchiveError) {
        var opened = stat()
        var named = stat()
        guard fstat(open.fd, &opened) == 0 else { throw ArchiveError.io("cannot stat", open.file.path) }
        guard opened.st_nlink > 0, stat(open.file.path, &named) == 0, named.st_ino == opened.st_ino, named.st_dev == opened.st_dev else {
            current = nil
            systemClose(open.fd)
            throw ArchiveError(.io, "\(open.file.path) was deleted or replaced while the archiver wrote it", errorNumber: ENOENT)
        }
    }

    /// Cuts the current file back to its last complete line; returns the bytes removed.
    @discardableResult
    private func repairCurrent() throws(ArchiveError) -> Int {
        guard var open = current else {
            needsRepair = false
            return 0
        }
        var info = stat()
        guard fstat(open.fd, &info) == 0 else { throw ArchiveError.io("cannot stat", open.file.path) }
        let size = Int(info.st_size)
        let keep = try Self.lengthOfCompleteLines(path: open.file.path, size: size)
        if keep < size {
            guard ftruncate(open.fd, off_t(keep)) == 0, fsync(open.fd) == 0 else {
                throw ArchiveError.io("cannot repair", open.file.path)
            }
        }
        open.size = keep
        current = open
        needsRepair = false
        return size - keep
    }

    /// The length of `path` up to and including its last `\n`.
    static func lengthOfCompleteLines(path: String, size: Int) throws(ArchiveError) -> Int {
        let fd = systemOpen(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError.io("cannot open", path) }
        defer { systemClose(fd) }
        var end = size
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while end > 0 {
            let start = max(0, end - buffer.count)
            let length = end - start
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, off_t(start)) }
            guard count == length else { throw ArchiveError.io("cannot read", path) }
            if let newline = buffer[..<length].lastIndex(of: UInt8(ascii: "\n")) {
                return start + newline + 1
            }
            end = start
        }
        return 0
    }

    // MARK: Reconciling

    /// The ids of the last `lineCount` complete records of this identity's
    /// files, newest file first (a batch may straddle a rotation).
    func idsInTail(lineCount: Int) throws(ArchiveError) -> Set<Int> {
        if needsRepair { _ = try repairCurrent() }
        var ids = Set<Int>()
        var seen = 0
        let decoder = JSONDecoder()
        let files = try HistoryFile.list(directory: directory).filter { $0.archiverId == archiverId }
            .sorted { $0.sequence > $1.sequence }
        for file in files where seen < lineCount {
            if file.isCompressed {
                // A batch can straddle a rotation, and the rotated file may be
                // compressed by now: its tail counts the same.
                let lines = try HistoryCompressor.decompressedContents(of: file).split(separator: 0x0A)
                for line in lines.reversed() where seen < lineCount {
                    seen += 1
                    if let record = try? decoder.decode(HistoryRecordID.self, from: Data(line)) { ids.insert(record.id) }
                }
                continue
            }
            let reader: BackwardLineReader
            do {
                reader = try BackwardLineReader(path: file.path)
            } catch where error.errorNumber == ENOENT {
                // Compressed between the listing and now: read the compressed twin.
                let lines = try HistoryCompressor.decompressedContents(of: file.compressed).split(separator: 0x0A)
                for line in lines.reversed() where seen < lineCount {
                    seen += 1
                    if let record = try? decoder.decode(HistoryRecordID.self, from: Data(line)) { ids.insert(record.id) }
                }
                continue
            }
            while seen < lineCount, let line = try reader.next() {
                seen += 1
                if let record = try? decoder.decode(HistoryRecordID.self, from: Data(line)) {
                    ids.insert(record.id)
                }
            }
        }
        return ids
    }

    // MARK: System calls

    /// Creates `directory` and its parents as needed (`mkdir -p`).
    static func makeDirectory(_ directory: String) throws(ArchiveError) {
        var info = stat()
        if stat(directory, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else { throw ArchiveError.io("cannot use", directory, errno: ENOTDIR) }
            return
        }
        let parent = (directory as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != directory { try makeDirectory(parent) }
        guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
            throw ArchiveError.io("cannot create directory", directory)
        }
    }

    static func syncDirectory(_ directory: String) throws(ArchiveError) {
        let fd = systemOpen(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError.io("cannot open", directory) }
        defer { systemClose(fd) }
        guard fsync(fd) == 0 else { throw ArchiveError.io("cannot fsync", directory) }
    }

    /// Writes all of `bytes` (at `offset`, or appending when `nil`), retrying short writes.
    static func writeAll(fd: Int32, bytes: [UInt8], path: String, offset: Int?) throws(ArchiveError) {
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                if let offset {
                    return pwrite(fd, buffer.baseAddress! + done, bytes.count - done, off_t(offset + done))
                }
                return write(fd, buffer.baseAddress! + done, bytes.count - done)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.io("cannot write", path)
            }
            done += count
        }
    }
}

/// The names in `directory`.
func listDirectory(_ directory: String) throws(ArchiveError) -> [String] {
    guard let handle = opendir(directory) else { throw ArchiveError.io("cannot list", directory) }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
        let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
            pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 {
    open(path, flags, mode)
}

func systemClose(_ fd: Int32) {
    _ = close(fd)
}
