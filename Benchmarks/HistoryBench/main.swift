// Writes a history directory in the archiver's own line format, for measuring
// history queries at production volume (scripts/history-bench.sh).
//
//   conveyor-history-bench DIR RECORDS [FILE_MIB]
//
// Records: ids increasing, finished at 2,000 jobs/s from 2026-11-01T00:00:00Z
// (archived 0–2 s later, in archive order), 20 common types and one "rare"
// type (1 in 100,000), users 1...1,000,000, payloads ~250 bytes with some
// random content. One identity ("bench"), files rotated at FILE_MIB (128).
import Conveyor
import Foundation

let arguments = CommandLine.arguments
guard arguments.count >= 3, let records = Int(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: conveyor-history-bench DIR RECORDS [FILE_MIB]\n".utf8))
    exit(2)
}
let directory = arguments[1]
let maxFileSize = (arguments.count > 3 ? Int(arguments[3]) ?? 128 : 128) << 20
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)

let template = #"""
    {"attempt":1,"autoRescheduleOnFailure":true,"autoRescheduleOnFailureDelay":60000,"createdAt":"2026-11-01T00:00:00.000Z","cronSchedule":null,"cronTimeZone":null,"data":{"n":1},"due":"2026-11-01T00:00:00.000Z","finished":"2026-11-01T00:00:00.000Z","id":1,"removeDelay":60000,"rescheduledFromJob":null,"result":{"ok":true},"started":"2026-11-01T00:00:00.000Z","success":true,"type":"sendEmail","userId":1,"workerId":"worker-1a2b3c"}
    """#
var job = try JSONDecoder().decode(WorkerJob.self, from: Data(template.utf8))
let types = ["sendEmail", "resizeImage", "chargeCard", "syncContacts", "renderInvoice", "pushNotification", "indexDocument",
             "exportReport", "refreshToken", "cleanupUploads", "sendSms", "transcodeVideo", "updateSearch", "webhookDelivery",
             "recomputeStats", "backupAccount", "importCsv", "generateThumbnail", "expireSessions", "auditLog"]
let locales = ["en-US", "de-DE", "fr-FR", "ja-JP", "pt-BR"]
let start = 1_793_491_200_000  // 2026-11-01T00:00:00Z
var generator = SystemRandomNumberGenerator()
let digits = Array("0123456789abcdef")
func hex(_ count: Int) -> String {
    var random = SystemRandomNumberGenerator()
    return String((0..<count).map { _ in digits[Int(random.next() & 15)] })
}
func fileName(_ ms: Int, _ sequence: Int) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
    return "history-\(formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000)))-bench-\(String(format: "%06d", sequence)).jsonl"
}

func ms(_ value: Int) -> Date { Date(timeIntervalSince1970: Double(value) / 1000) }

var sequence = 0
var handle: FileHandle?
var size = 0
let batch = 500
var written = 0
var bytesTotal = 0
let began = Date()
while written < records {
    let count = min(batch, records - written)
    let archivedAt = start + (written + count) / 2 + 2000
    var entries: [HistoryEntry] = []
    entries.reserveCapacity(count)
    for offset in 0..<count {
        let n = written + offset
        let finished = start + n / 2
        job.id = 1 + n
        job.type = n % 100_000 == 77_777 ? "rare" : types[Int.random(in: 0..<types.count, using: &generator)]
        job.userId = Int.random(in: 1...1_000_000, using: &generator)
        job.createdAt = ms(finished - 1500 - Int.random(in: 0..<60_000, using: &generator))
        job.due = job.createdAt
        job.started = ms(finished - 800)
        job.finished = ms(finished)
        job.success = n % 17 != 0
        job.attempt = n % 17 == 0 ? 3 : 1
        job.dataJSON = #"{"account":"acct_\#(hex(12))","locale":"\#(locales[n % 5])","n":\#(n),"note":"order \#(n % 9973) for customer \#(job.userId)","to":"user\#(job.userId)@example.com"}"#
        job.resultJSON = job.success == true ? #"{"ok":true,"messageId":"\#(hex(24))","ms":\#(n % 900)}"# : #"{"error":"upstream timeout after 30000 ms","retryable":true}"#
        entries.append(HistoryEntry(job: job, archivedAt: ms(archivedAt)))
    }
    let bytes = try HistoryEntry.lines(entries)
    if handle == nil || size + bytes.count > maxFileSize {
        try handle?.close()
        sequence += 1
        let path = (directory as NSString).appendingPathComponent(fileName(archivedAt, sequence))
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        handle = FileHandle(forWritingAtPath: path)
        size = 0
    }
    handle!.write(Data(bytes))
    size += bytes.count
    bytesTotal += bytes.count
    written += count
}
try handle?.close()
let seconds = Date().timeIntervalSince(began)
print("wrote \(records) records, \(bytesTotal) bytes (\(bytesTotal / max(records, 1)) per record) in \(sequence) files, \(String(format: "%.1f", seconds)) s")
