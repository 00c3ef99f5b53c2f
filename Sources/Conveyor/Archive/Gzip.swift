import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// gzip through zlib, in whole members.
///
/// The history log compresses a rotated file as a series of independent gzip
/// members (one per block of about 1 MiB of lines). Concatenated members are
/// still one valid gzip file (`zcat`, `gunzip` and DuckDB read it), and each
/// member can be decompressed on its own, so a query that knows which block
/// holds a record reads only that block.
enum Gzip {
    /// One complete gzip member holding `bytes`.
    static func compress(_ bytes: UnsafeRawBufferPointer, level: Int32 = 6) throws(ArchiveError) -> [UInt8] {
        var stream = z_stream()
        guard conveyor_deflateInit2(&stream, level) == Z_OK else { throw ArchiveError(.io, "zlib: deflateInit2 failed") }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(bytes.count))) + 32
        var output = [UInt8](repeating: 0, count: bound)
        let status = output.withUnsafeMutableBufferPointer { out -> Int32 in
            stream.next_in = UnsafeMutablePointer(mutating: bytes.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(bytes.count)
            stream.next_out = out.baseAddress
            stream.avail_out = uInt(out.count)
            return deflate(&stream, Z_FINISH)
        }
        guard status == Z_STREAM_END else { throw ArchiveError(.io, "zlib: deflate failed (\(status))") }
        output.removeSubrange(Int(stream.total_out)...)
        return output
    }

    /// Decompresses every member of `bytes` and appends the data to `output`.
    /// - Throws: ``ArchiveError`` with code `io` for data that is not complete gzip.
    static func decompress(_ bytes: UnsafeRawBufferPointer, into output: inout [UInt8], expectedSize: Int? = nil) throws(ArchiveError) {
        var consumed = 0
        let chunk = 1 << 20
        if let expectedSize { output.reserveCapacity(output.count + expectedSize) }
        while consumed < bytes.count {
            var stream = z_stream()
            guard conveyor_inflateInit2(&stream) == Z_OK else { throw ArchiveError(.io, "zlib: inflateInit2 failed") }
            defer { inflateEnd(&stream) }
            stream.next_in = UnsafeMutablePointer(mutating: (bytes.baseAddress! + consumed).assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(bytes.count - consumed)
            var status: Int32 = Z_OK
            while status == Z_OK {
                let start = output.count
                let room = max(chunk, (expectedSize ?? 0) - start)
                output.append(contentsOf: repeatElement(0, count: room))
                status = output.withUnsafeMutableBufferPointer { out -> Int32 in
                    stream.next_out = out.baseAddress! + start
                    stream.avail_out = uInt(room)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                output.removeLast(Int(stream.avail_out))
                if status == Z_BUF_ERROR && stream.avail_in > 0 { status = Z_OK }  // only out of room
            }
            guard status == Z_STREAM_END else {
                throw ArchiveError(.io, "corrupt or truncated gzip data (zlib status \(status))", errorNumber: EIO)
            }
            consumed = bytes.count - Int(stream.avail_in)
        }
    }

    /// CRC-32 of `bytes` (gzip's checksum).
    static func crc32(_ bytes: UnsafeRawBufferPointer, previous: UInt = 0) -> UInt {
        UInt(CZlib.crc32(uLong(previous), bytes.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt(bytes.count)))
    }
}

extension Gzip {
    /// One complete gzip member holding `bytes`.
    static func compress(_ bytes: [UInt8], level: Int32 = 6) throws(ArchiveError) -> [UInt8] {
        try bytes.withUnsafeBytes { buffer in Result { () throws(ArchiveError) in try compress(buffer, level: level) } }.get()
    }

    /// Decompresses every member of `bytes` and appends the data to `output`.
    static func decompress(_ bytes: [UInt8], into output: inout [UInt8], expectedSize: Int? = nil) throws(ArchiveError) {
        var result: [UInt8] = []
        swap(&result, &output)
        defer { swap(&result, &output) }
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(ArchiveError) in try decompress(buffer, into: &result, expectedSize: expectedSize) }
        }.get()
    }
}
