import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Archiver identities: lock files `archiver-<id>.lock` holding the
/// directory's token for the identity, taken with `flock` (see ``HistoryWriter``).
extension HistoryWriter {
    static func lockName(_ archiverId: String) -> String { "archiver-\(archiverId).lock" }

    /// Takes an identity in `directory` (created if missing): `archiverId`
    /// when given, else the first existing identity no running archiver holds,
    /// else a new one. Repairs a torn last line of its newest file.
    /// - Throws: ``ArchiveError``: `io` when the directory cannot be used,
    ///   `identityInUse` when the named identity is held by a running archiver.
    static func open(directory: String, archiverId: String?, maxFileSize: Int) throws(ArchiveError) -> HistoryWriter {
        try makeDirectory(directory)
        let writer: HistoryWriter
        if let archiverId {
            guard let taken = try lock(directory: directory, archiverId: archiverId, create: true) else {
                throw ArchiveError(
                    .identityInUse,
                    "archiver \(archiverId) is already running on \(directory) (its lock file is held); give each archiver its own --archiver-id"
                )
            }
            writer = taken
        } else if let free = try lockFreeIdentities(directory: directory, excluding: [], maxCount: 1, maxFileSize: maxFileSize).first {
            return free
        } else {
            writer = try createIdentity(directory: directory)
        }
        return try writer.prepare(maxFileSize: maxFileSize)
    }

    /// Locks up to `maxCount` existing identities of `directory` that no
    /// running archiver holds (their archiver died), in name order.
    static func lockFreeIdentities(directory: String, excluding: Set<String>, maxCount: Int, maxFileSize: Int)
        throws(ArchiveError) -> [HistoryWriter]
    {
        let names = try listDirectory(directory).sorted()
        var result: [HistoryWriter] = []
        for name in names where name.hasPrefix("archiver-") && name.hasSuffix(".lock") && result.count < maxCount {
            let archiverId = String(name.dropFirst("archiver-".count).dropLast(".lock".count))
            guard ArchiverConfiguration.isValidArchiverId(archiverId), !excluding.contains(archiverId) else { continue }
            if let writer = try lock(directory: directory, archiverId: archiverId, create: false) {
                result.append(try writer.prepare(maxFileSize: maxFileSize))
            }
        }
        return result
    }

    private static func createIdentity(directory: String) throws(ArchiveError) -> HistoryWriter {
        for _ in 0..<100 {
            let archiverId = randomHex(bytes: 6)
            let path = (directory as NSString).appendingPathComponent(lockName(archiverId))
            let fd = systemOpen(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd < 0 {
                if errno == EEXIST { continue }
                throw ArchiveError.io("cannot create", path)
            }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                let number = errno
                systemClose(fd)
                if number == EWOULDBLOCK { continue }
                throw ArchiveError.io("cannot lock", path, errno: number)
            }
            let token = try writeToken(fd: fd, path: path)
            try syncDirectory(directory)
            return HistoryWriter(directory: directory, archiverId: archiverId, token: token, lockFD: fd)
        }
        throw ArchiveError(.io, "cannot create a new archiver identity in \(directory)")
    }

    /// Locks `archiver-<id>.lock`; `nil` when a running archiver holds it.
    private static func lock(directory: String, archiverId: String, create: Bool) throws(ArchiveError) -> HistoryWriter? {
        let path = (directory as NSString).appendingPathComponent(lockName(archiverId))
        let fd = systemOpen(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o644)
        if fd < 0 {
            if !create && errno == ENOENT { return nil }
            throw ArchiveError.io("cannot open", path)
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let number = errno
            systemClose(fd)
            if number == EWOULDBLOCK { return nil }
            throw ArchiveError.io("cannot lock", path, errno: number)
        }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 128, 0) }
        var token = count > 0 ? String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
        if token.isEmpty {
            // Created, then killed before its token was durable: it was never
            // bound in Redis, so a new token is safe.
            do throws(ArchiveError) {
                token = try writeToken(fd: fd, path: path)
                if create { try syncDirectory(directory) }
            } catch {
                systemClose(fd)
                throw error
            }
        }
        return HistoryWriter(directory: directory, archiverId: archiverId, token: token, lockFD: fd)
    }

    private static func writeToken(fd: Int32, path: String) throws(ArchiveError) -> String {
        let token = randomHex(bytes: 16)
        let bytes = Array((token + "\n").utf8)
        guard ftruncate(fd, 0) == 0 else { throw ArchiveError.io("cannot write", path) }
        try writeAll(fd: fd, bytes: bytes, path: path, offset: 0)
        guard fsync(fd) == 0 else { throw ArchiveError.io("cannot fsync", path) }
        return token
    }

    static func randomHex(bytes: Int) -> String {
        (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}
