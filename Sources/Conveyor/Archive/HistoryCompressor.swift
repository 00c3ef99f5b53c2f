import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Compresses a rotated history file and writes its sidecar index, without
/// ever having a moment where its records exist only in an unverified file.
///
/// 1. Cut the file into blocks of about 1 MiB of whole lines; compress each
///    block into one gzip member of `<name>.gz.tmp-<tag>` and summarize it.
/// 2. `fsync` the temporary file, then read it back and decompress every
///    member: its size and CRC-32 must equal the original block's.
/// 3. Write the index to a temporary file, `fsync`, rename it into place.
/// 4. Give the compressed file the original's modification time, rename it
///    to `<name>.gz`, `fsync` the directory.
/// 5. Only then remove the original and `fsync` the directory again.
///
/// Killed at any step, the original is still there (and listed; a `.gz`
/// beside it is ignored and redone). Blocking: it runs on the archiver's
/// maintenance thread.
enum HistoryCompressor {
    /// Compresses `file` (a plain, rotated file) and returns its index.
    /// - Throws: ``ArchiveError`` with code `io`; the original is then untouched.
    @discardableResult
    static func compress(_ file: HistoryFile, tag: String, level: Int32 = 6) throws(ArchiveError) -> HistoryIndex {
        let directory = (file.path as NSString).deletingLastPathComponent
        let source = open(file.path, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else { throw ArchiveError.io("cannot open", file.path) }
        defer { close(source) }
        var info = stat()
        guard fstat(source, &info) == 0 else { throw ArchiveError.io("cannot stat", file.path) }
        let size = Int(info.st_size)
        let target = file.compressed
        let temporary = target.path + ".tmp-" + tag
        let output = open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw ArchiveError.io("cannot create", temporary) }
        var keepTemporary = false
        defer {
            close(output)
            if !keepTemporary { unlink(temporary) }
        }

        var blocks: [HistoryIndex.Block] = []
        var position = 0
        var written = 0
        var records = 0
        while position < size {
            let length = min(HistoryIndex.blockSize, size - position)
            var data = try HistoryStream.read(fd: source, path: file.path, offset: position, length: length)
            // A block ends at a line end: extend to the next `\n`.
            while data.last != 0x0A {
                let more = min(64 * 1024, size - position - data.count)
                guard more > 0 else {
                    throw ArchiveError(.io, "\(file.path) does not end in a complete line; not compressing it", errorNumber: EINVAL)
                }
                let extra = try HistoryStream.read(fd: source, path: file.path, offset: position + data.count, length: more)
                if let newline = extra.firstIndex(of: 0x0A) {
                    data += extra[...newline]
                } else {
                    data += extra
                }
            }
            let member = try Gzip.compress(data, level: level)
            try HistoryWriter.writeAll(fd: output, bytes: member, path: temporary, offset: written)
            let block = data.withUnsafeBufferPointer { HistoryIndex.summarize($0, offset: written, length: member.count) }
            records += block.records
            blocks.append(block)
            written += member.count
            position += data.count
        }
        guard fsync(output) == 0 else { throw ArchiveError.io("cannot fsync", temporary) }

        // Verify what is on disk against what was read.
        for block in blocks {
            let member = try HistoryStream.read(fd: output, path: temporary, offset: block.offset, length: block.length)
            var data: [UInt8] = []
            try Gzip.decompress(member, into: &data, expectedSize: block.size)
            let crc = data.withUnsafeBytes { Gzip.crc32($0) }
            guard data.count == block.size, crc == block.crc32 else {
                throw ArchiveError(.io, "the compressed copy of \(file.path) does not read back as the original", errorNumber: EIO)
            }
        }

        let index = HistoryIndex(file: target.name, fileSize: written, compressed: true, dataSize: size, records: records, blocks: blocks)
        try writeIndex(index, for: file, tag: tag)
        var times = [info.st_atim, info.st_mtim]
        _ = futimens(output, &times)  // retention by age reads it; not worth failing over
        guard rename(temporary, target.path) == 0 else { throw ArchiveError.io("cannot rename", temporary) }
        keepTemporary = true  // it is the compressed file now
        try HistoryWriter.syncDirectory(directory)
        guard unlink(file.path) == 0 || errno == ENOENT else { throw ArchiveError.io("cannot remove", file.path) }
        try HistoryWriter.syncDirectory(directory)
        return index
    }

    /// Writes an index for a plain rotated file (when compression is off), so
    /// queries can skip its blocks too.
    @discardableResult
    static func index(_ file: HistoryFile, tag: String) throws(ArchiveError) -> HistoryIndex {
        let source = open(file.path, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else { throw ArchiveError.io("cannot open", file.path) }
        defer { close(source) }
        var info = stat()
        guard fstat(source, &info) == 0 else { throw ArchiveError.io("cannot stat", file.path) }
        let size = Int(info.st_size)
        var blocks: [HistoryIndex.Block] = []
        var position = 0
        var records = 0
        while position < size {
            let length = min(HistoryIndex.blockSize + 64 * 1024, size - position)
            var data = try HistoryStream.read(fd: source, path: file.path, offset: position, length: length)
            guard let newline = data.lastIndex(of: 0x0A) else {
                throw ArchiveError(.io, "\(file.path) has a line longer than a block or no complete line; not indexing it", errorNumber: EINVAL)
            }
            data.removeSubrange((newline + 1)...)
            let block = data.withUnsafeBufferPointer { HistoryIndex.summarize($0, offset: position, length: data.count) }
            records += block.records
            blocks.append(block)
            position += data.count
        }
        let index = HistoryIndex(file: file.name, fileSize: size, compressed: false, dataSize: size, records: records, blocks: blocks)
        try writeIndex(index, for: file, tag: tag)
        return index
    }

    private static func writeIndex(_ index: HistoryIndex, for file: HistoryFile, tag: String) throws(ArchiveError) {
        let bytes: [UInt8]
        do {
            bytes = try index.encoded()
        } catch {
            throw ArchiveError(.io, "cannot encode the index of \(file.path): \(error)")
        }
        let temporary = file.indexPath + ".tmp-" + tag
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ArchiveError.io("cannot create", temporary) }
        defer { close(fd) }
        do throws(ArchiveError) {
            try HistoryWriter.writeAll(fd: fd, bytes: bytes, path: temporary, offset: 0)
            guard fsync(fd) == 0 else { throw ArchiveError.io("cannot fsync", temporary) }
            guard rename(temporary, file.indexPath) == 0 else { throw ArchiveError.io("cannot rename", temporary) }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// The records of a file, decompressed if it is compressed.
    static func decompressedContents(of file: HistoryFile) throws(ArchiveError) -> [UInt8] {
        let fd = open(file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError.io("cannot open", file.path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ArchiveError.io("cannot stat", file.path) }
        let raw = try HistoryStream.read(fd: fd, path: file.path, offset: 0, length: Int(info.st_size))
        guard file.isCompressed else { return raw }
        var data: [UInt8] = []
        try Gzip.decompress(raw, into: &data)
        return data
    }
}
