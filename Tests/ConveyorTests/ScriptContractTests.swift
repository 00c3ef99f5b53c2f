import Foundation
import NIOCore
import Testing

@testable import Conveyor

/// The contract between Swift and `lua/`, read from the Lua sources and
/// `lua/README.md` themselves: a field, outcome code or key renamed on one
/// side only fails here.
@Suite("Swift ↔ Lua contract")
struct ScriptContractTests {
    static let luaDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("lua")

    static func luaFiles() throws -> [(name: String, text: String)] {
        let directory = luaDirectory.path
        var files: [(String, String)] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) where name.hasSuffix(".lua") {
            files.append((name, try String(contentsOfFile: directory + "/" + name, encoding: .utf8)))
        }
        let includes = directory + "/includes"
        for name in try FileManager.default.contentsOfDirectory(atPath: includes) where name.hasSuffix(".lua") {
            files.append(("includes/" + name, try String(contentsOfFile: includes + "/" + name, encoding: .utf8)))
        }
        return files.sorted { $0.0 < $1.0 }
    }

    static func matches(_ pattern: String, in text: String) throws -> [[String]] {
        let regex = try NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
        let range = NSRange(text.startIndex..., in: text)
        return regex.matches(in: text, range: range).map { match in
            (0..<match.numberOfRanges).map { index in
                Range(match.range(at: index), in: text).map { String(text[$0]) } ?? ""
            }
        }
    }

    @Test("every script's KEYS, as its header lists them, are the keys its Swift signature passes, in order")
    func keysMatchHeaders() throws {
        let files = try Self.luaFiles().filter { !$0.name.hasPrefix("includes/") }
        #expect(files.count == ScriptSignature.all.count, "a script without a Swift signature, or the reverse")
        for signature in ScriptSignature.all {
            let file = try #require(files.first { $0.name.hasPrefix(signature.script.name + "-") }, "lua/\(signature.script.name)-N.lua")
            let declared = Int(file.name.dropFirst(signature.script.name.count + 1).dropLast(4))
            #expect(declared == signature.keys.count, "\(file.name)")
            let header = try Self.matches(#"^\s*KEYS\[(\d+)\]\s+(\w+)"#, in: file.text)
            #expect(header.map { Int($0[1]) } == Array(1...max(1, header.count)).map { $0 }, "\(file.name): KEYS numbered 1…n")
            #expect(header.map { $0[2] } == signature.keys.map(\.rawValue), "\(file.name)")
        }
    }

    @Test("every outcome code the scripts declare is the Swift enum's, and lua/README.md's table agrees")
    func outcomeCodes() throws {
        func swiftName(_ lua: String) -> String {
            let words = lua.lowercased().split(separator: "_")
            return String(words[0]) + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        }
        var declared: [String: Int] = [:]
        for file in try Self.luaFiles() {
            // local COMPLETED, LEASE_LOST = 1, 2
            for match in try Self.matches(#"^local ([A-Z][A-Z_]*(?:, [A-Z][A-Z_]*)*) = (\d+(?:, \d+)*)\s*$"#, in: file.text) {
                let names = match[1].components(separatedBy: ", ")
                let codes = match[2].components(separatedBy: ", ").compactMap(Int.init)
                #expect(names.count == codes.count, "\(file.name): \(match[0])")
                for (name, code) in zip(names, codes) {
                    #expect(declared[name].map { $0 == code } ?? true, "\(name) has two codes")
                    declared[name] = code
                }
            }
        }
        #expect(!declared.isEmpty)
        for (name, code) in declared {
            #expect(ScriptOutcome(rawValue: code).map { "\($0)" } == swiftName(name), "\(name) = \(code) in Lua")
        }
        let readme = try String(contentsOf: Self.luaDirectory.appendingPathComponent("README.md"), encoding: .utf8)
        let table = try Self.matches(#"^\| (\d+) \| `([A-Z_]+)` \|"#, in: readme)
        #expect(Set(table.map { "\($0[2])=\($0[1])" }) == Set(declared.map { "\($0.key)=\($0.value)" }), "lua/README.md's outcome table")
        #expect(Set(table.compactMap { Int($0[1]) }) == Set(ScriptOutcome.allCases.map(\.rawValue)))
    }

    @Test("the job-hash fields of lua/README.md are JobField's, and every field name the scripts use is one of them")
    func jobFields() throws {
        let known = Set(JobField.allCases.map(\.rawValue))
        let readme = try String(contentsOf: Self.luaDirectory.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "## Job hash fields")).upperBound
        let table = try Self.matches(#"^\| `([a-z0-9]+)` \|"#, in: String(readme[section...]).components(separatedBy: "\nDerived")[0])
        #expect(Set(table.map { $0[1] }) == known, "lua/README.md's field table")

        // Field names appear in the scripts as short lower-case literals: in
        // HGET/HMGET/HSET/HEXISTS/HDEL of a job, in `args` lists, `job.x` reads
        // and `job[i] == "t"` scans. Literals of that shape that are not
        // fields (statuses, outcome names) are listed here.
        let notFields: Set = ["i", "ok"]  // completeJobs' status "i"; "ok" is also the outcome name
        var used: Set<String> = []
        for file in try Self.luaFiles() {
            let code = file.text.components(separatedBy: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }
                .joined(separator: "\n")
            // Argument names in checkInt's error messages are not fields.
            let withoutLabels = code.replacingOccurrences(
                of: #"checkInt\(([^,]+), "[a-zA-Z]+""#, with: "checkInt($1", options: .regularExpression
            )
            for match in try Self.matches(#""([a-z]{1,3})""#, in: withoutLabels) { used.insert(match[1]) }
            for match in try Self.matches(#"\bjob\.([a-z]{1,3})\b"#, in: code) where file.name.contains("scheduleFollowUp") || file.name.contains("recoverJobs")
            {
                used.insert(match[1])
            }
        }
        let unknown = used.subtracting(known).subtracting(notFields)
        #expect(unknown.isEmpty, "field names the scripts use that JobField does not know: \(unknown.sorted())")
        // And the ones the scripts must use: every field but the old absolute due
        // (only read, by Swift, for jobs stored before `dd`).
        let unused = known.subtracting(used).subtracting(["du"])
        #expect(unused.isEmpty, "JobField cases no script mentions: \(unused.sorted())")
    }

    @Test("WorkerJob reads every field it surfaces from a raw hash (ic and rl are for the scripts only)")
    func decoderCoversEveryField() throws {
        var hash: [String: String] = [:]
        for field in JobField.allCases {
            switch field {
            case .type: hash[field.rawValue] = "mail"
            case .data, .result: hash[field.rawValue] = #"{"k":1}"#
            case .cron: hash[field.rawValue] = "* * * * *"
            case .cronTimeZone: hash[field.rawValue] = "Europe/Paris"
            case .workerId: hash[field.rawValue] = "w-1"
            case .success, .autoReschedule: hash[field.rawValue] = "1"
            case .dueAbsolute: continue  // read only when dd is absent
            default: hash[field.rawValue] = "\(1_000 + JobField.allCases.firstIndex(of: field)!)"
            }
        }
        let fields = hash.flatMap { [RESPValue.bulkString(.init(string: $0.key)), .bulkString(.init(string: $0.value))] }
        let job = try #require(WorkerJob(id: 5, hashFields: fields[...]))
        #expect(RawJobHash.problem(in: fields) == nil, "the archiver's strict check knows every field")
        #expect(job.type == "mail" && job.userId == Int(hash["u"]!) && job.dataJSON == #"{"k":1}"# && job.resultJSON == #"{"k":1}"#)
        #expect(job.createdAt == Date(milliseconds: Int(hash["ca"]!)!))
        #expect(job.due == Date(milliseconds: Int(hash["ca"]!)! + Int(hash["dd"]!)!))
        #expect(job.started == Date(milliseconds: Int(hash["st"]!)!) && job.finished == Date(milliseconds: Int(hash["fi"]!)!))
        #expect(job.workerId == "w-1" && job.success == true && job.autoRescheduleOnFailure == true)
        #expect(job.cronSchedule == "* * * * *" && job.cronTimeZone == "Europe/Paris")
        #expect(job.autoRescheduleOnFailureDelay == Int(hash["ard"]!) && job.removeDelay == Int(hash["rmd"]!))
        #expect(job.rescheduledFromJob == Int(hash["rf"]!) && job.attempt == Int(hash["a"]!))
        #expect(job.followUpSupersededBy == Int(hash["sb"]!))
    }
}

/// What a script answers a caller that passes too few arguments: its own
/// `ERR conveyor:` message, never a Lua runtime error, and nothing written.
@Suite("Scripts given too few arguments")
struct ScriptArgumentCountTests {
    @Test("every script answers too few arguments with its own ERR conveyor: message and writes nothing")
    func tooFewArguments() async throws {
        try await TestRedis.withClient { client, ns in
            let keys = try ConveyorKeys(namespace: ns)
            let partition = keys.partition(0)
            var answers: [String] = []
            for signature in ScriptSignature.all {
                // Fewer arguments than the script needs (getJobs and releaseArchiveClaims
                // take an empty list, so they succeed), as far as no other script accepts.
                for count in 0..<2 {
                    let arguments: [any RESPArgument] = Array(repeating: "1", count: count)
                    let call = signature.keys == [.archivers] ? signature.call(keys, arguments) : signature.call(partition, arguments, workerId: "w")
                    do {
                        _ = try await client.eval(call)
                        answers.append("\(signature.script.name)/\(count): ok")
                    } catch let error as RedisError {
                        answers.append("\(signature.script.name)/\(count): \(error.message)")
                        // The message follows the client's "EVALSHA <script>: " prefix.
                        #expect(error.message.contains(": ERR conveyor: "), "\(signature.script.name) with \(count) arguments: \(error.message)")
                    }
                }
            }
            #expect(answers.filter { !$0.hasSuffix(": ok") }.count >= 21, "\(answers)")
            // A missing integer is named as missing, not as the text "nil".
            #expect(answers.contains { $0.hasPrefix("claimJobs/0:") && $0.contains("ERR conveyor: maxCount is missing") }, "\(answers)")
            #expect(!answers.contains { $0.contains("got 'nil'") }, "\(answers)")
            let written = try await TestRedis.keys(client, namespace: ns)
            #expect(written.isEmpty, "nothing written: \(written), \(answers)")
        }
    }
}
