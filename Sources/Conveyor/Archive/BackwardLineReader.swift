#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads the complete lines of a file from the last to the first, in chunks.
///
/// A last line without its `\n` is a torn write (the writer was killed in the
/// middle of it) and is never returned: only complete lines are records.
/// Blocking: use it on a thread that may block, never on the cooperative pool.
final class BackwardLineReader {
    private let fd: Int32
    private let path: String
    private var position: Int
    private var pending: [UInt8] = []
    private let chunkSize: Int

    /// Opens `path`; reads what it holds now (later appends are not seen).
    init(path: String, chunkSize: Int = 256 * 1024) throws(ArchiveError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError.io("cannot open", path) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let number = errno
            close(fd)
            throw ArchiveError.io("cannot stat", path, errno: number)
        }
        self.fd = fd
        self.path = path
        self.position = Int(info.st_size)
        self.chunkSize = chunkSize
        try dropTornTail()
    }

    deinit { close(fd) }

    /// The next line toward the start of the file, without its `\n`; `nil` at the start.
    func next() throws(ArchiveError) -> ArraySlice<UInt8>? {
        while true {
            if let newline = pending.lastIndex(of: UInt8(ascii: "\n")) {
                let line = pending[(newline + 1)...]
                let result = ArraySlice(Array(line))
                pending.removeSubrange(newline...)
                if result.isEmpty { continue }
                return result
            }
            if position == 0 {
                guard !pending.isEmpty else { return nil }
                let result = ArraySlice(pending)
                pending = []
                return result
            }
            try readChunk()
        }
    }

    /// Reads the chunk before `pending`.
    private func readChunk() throws(ArchiveError) {
        let size = min(chunkSize, position)
        var chunk = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let count = chunk.withUnsafeMutableBytes { buffer in
                pread(fd, buffer.baseAddress! + done, size - done, off_t(position - size + done))
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.io("cannot read", path)
            }
            if count == 0 { break }
            done += count
        }
        position -= size
        pending = Array(chunk[..<done]) + pending
    }

    /// Forgets the bytes after the last `\n` (a torn last line), keeping that `\n`.
    private func dropTornTail() throws(ArchiveError) {
        while position > 0 || !pending.isEmpty {
            if let newline = pending.lastIndex(of: UInt8(ascii: "\n")) {
                pending.removeSubrange((newline + 1)...)
                return
            }
            if position == 0 {
                pending = []
                return
            }
            try readChunk()
        }
    }
}
