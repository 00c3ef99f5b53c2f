import ArgumentParser
import ConveyorRedis
import ConveyorTesting
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorCLI

/// `conveyor schedule --from FILE` as a real process against a real server.
@Suite("conveyor schedule --from")
struct BulkScheduleTests {
    /// What `conveyor <arguments> < input` printed (stdout and stderr) and its exit status.
    static func run(
        _ arguments: [String], input: String, executable: String = ConveyorProcess.executable, inputOnStdin: Bool = true
    ) async throws -> (output: String, status: Int) {
        let directory = FileManager.default.temporaryDirectory
        let inputPath = directory.appendingPathComponent("bulk-\(UUID().uuidString).jsonl").path
        let logPath = directory.appendingPathComponent("bulk-\(UUID().uuidString).log").path
        try Data(input.utf8).write(to: URL(fileURLWithPath: inputPath))
        defer {
            try? FileManager.default.removeItem(atPath: inputPath)
            try? FileManager.default.removeItem(atPath: logPath)
        }
        let arguments = arguments.map { $0.replacingOccurrences(of: "@input", with: inputPath) }
        let script = "\"$0\" \"$@\" < '\(inputOnStdin ? inputPath : "/dev/null")'; echo \"exit=$?\""
        let child = try ChildProcess.spawn("/bin/sh", arguments: ["-c", script, executable] + arguments, standardOutput: logPath)
        await child.waitForExit(timeout: .seconds(120))
        let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        // By bytes: a terminal's "\r\n" is one Character, which a split on "\n" would not cut.
        let last = output.utf8.split(separator: UInt8(ascii: "\n")).last.map { String(decoding: $0, as: UTF8.self) } ?? ""
        let status = last.hasPrefix("exit=") ? Int(last.dropFirst(5)) ?? -1 : -1
        return (output, status)
    }

    static func pending(_ client: RedisClient, _ ns: String) async throws -> Int {
        let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: ns, partitionTags: TestRedis.partitionTags)))
        let counts = try await scheduler.counts()
        return counts.values.reduce(0, +)
    }

    @Test("a good file: every field, data stored as written, blank lines skipped, the created jobs printed")
    func goodFile() async throws {
        try await TestRedis.withClient { client, ns in
            let url = try await TestRedis.url()
            let lines = [
                #"{"type":"echo","user":1,"data":{"big":12345678901234567890, "x" : [1, {"y":"}"}]}}"#,
                "",
                #"{"type":"sleep","userId":2,"data":{"ms":5},"due":"+1h","autoRetry":true,"retryDelay":500,"maxAttempts":3,"backoffMaxDelay":60000,"removeDelay":1000}"#,
                #"  {"type":"noop","user":0,"due":"2030-01-02T03:04:05.678Z"}  "#,
            ]
            let result = try await Self.run(
                ["schedule", "--from", "@input", "--json", "--redis", url, "--namespace", ns], input: lines.joined(separator: "\n") + "\n"
            )
            #expect(result.status == 0, "\(result.output)")
            let printed = result.output.split(separator: "\n").compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            }
            let ids = printed.compactMap { $0["id"] as? Int }
            #expect(ids.count == 3, "\(result.output)")
            let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: ns, partitionTags: TestRedis.partitionTags)))
            let jobs = try await scheduler.jobs(ids: ids)
            #expect(jobs.map(\.type) == ["echo", "sleep", "noop"])
            #expect(jobs[0].userId == 1 && jobs[0].dataJSON == #"{"big":12345678901234567890, "x" : [1, {"y":"}"}]}"#)
            let sleep = jobs[1]
            #expect(sleep.userId == 2 && sleep.dataJSON == #"{"ms":5}"# && sleep.autoRescheduleOnFailure)
            #expect(sleep.autoRescheduleOnFailureDelay == 500 && sleep.removeDelay == 1000)
            #expect(sleep.autoRescheduleOnFailureMaxAttempts == 3 && sleep.autoRescheduleOnFailureBackoff == .exponential(maxDelay: .seconds(60)))
            #expect(sleep.due.timeIntervalSince(sleep.createdAt) == 3600, "+1h counts from Redis's now")
            #expect(jobs[2].userId == 0 && jobs[2].dataJSON == nil && jobs[2].due == Date(iso8601Milliseconds: "2030-01-02T03:04:05.678Z"))
        }
    }

    @Test("standard input with `-` (a byte order mark, CRLF); plain progress lines when stderr is not a terminal")
    func standardInput() async throws {
        try await TestRedis.withClient { client, ns in
            let url = try await TestRedis.url()
            let input = "\u{FEFF}" + #"{"type":"echo","user":1,"data":"a"}"# + "\r\n" + #"{"type":"echo","user":2}"# + "\n"
            let result = try await Self.run(["schedule", "--from", "-", "--redis", url, "--namespace", ns], input: input)
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("scheduled 2/2 jobs"))
            #expect(result.output.contains("scheduled 2 jobs from standard input"))
            #expect(!result.output.contains("\r") && !result.output.contains("\u{1B}["), "no terminal drawing into a file")
            #expect(try await Self.pending(client, ns) == 2)
        }
    }

    @Test("a progress bar redrawn in place when stderr is a terminal (under script(1))")
    func terminalProgress() async throws {
        try await TestRedis.withClient { client, ns in
            let url = try await TestRedis.url()
            let input = (1...2500).map { #"{"type":"noop","user":\#($0)}"# }.joined(separator: "\n")
            let command = [ConveyorProcess.executable, "schedule", "--from", "-", "--redis", url, "--namespace", ns].joined(separator: " ")
            // script(1) (util-linux, in every Debian) gives the command a terminal; its own
            // stdin stays /dev/null, or the terminal would echo the input into the output.
            let result = try await Self.run(["-qec", command + " < @input", "/dev/null"], input: input, executable: "/usr/bin/script", inputOnStdin: false)
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("\r[############------------------] 1000/2500 jobs"), "\(result.output)")
            #expect(result.output.contains("\r[##############################] 2500/2500 jobs"))
            #expect(!result.output.contains("scheduled 1000/2500 jobs"), "no plain progress lines on a terminal")
            #expect(try await Self.pending(client, ns) == 2500)
        }
    }

    @Test("a bad line is reported with its number and nothing is written (exit 2)")
    func badLine() async throws {
        try await TestRedis.withClient { client, ns in
            let url = try await TestRedis.url()
            var lines = (1...6).map { #"{"type":"echo","user":\#($0)}"# }
            lines[3] = #"{"type":"sleep","user":4,"data":{"ms":"soon"}}"#  // line 4: not the Input of sleep
            let result = try await Self.run(["schedule", "--from", "@input", "--redis", url, "--namespace", ns], input: lines.joined(separator: "\n"))
            #expect(result.status == 2, "\(result.output)")
            #expect(result.output.contains("line 4: "), "\(result.output)")
            #expect(!result.output.contains("line 3") && !result.output.contains("line 5"))
            #expect(result.output.contains("nothing was scheduled"))
            #expect(try await Self.pending(client, ns) == 0)

            // Each kind of bad line names its line and what is wrong with it.
            let bad = [
                #"{"type":"echo","user":1,"retrydelay":5}"#, #"{"type":"echo""#, #"[1,2]"#, #"{"user":1}"#,
                #"{"type":"echo","user":-1}"#, #"{"type":"echo","user":1,"due":"tomorrow"}"#, #"{"type":"nope","user":1}"#,
                #"{"type":"echo","user":"1"}"#, #"{"type":"echo","user":1,"autoRetry":1}"#, #"{"type":"echo","user":1,"userId":1}"#,
                #"{"type":"echo","user":1,"maxAttempts":0}"#,
            ]
            let many = try await Self.run(["schedule", "--from", "@input", "--redis", url, "--namespace", ns], input: bad.joined(separator: "\n"))
            #expect(many.status == 2)
            let expected = [
                "unknown field \"retrydelay\"", "not valid JSON", "expected a JSON object", "missing field \"type\"",
                "\"user\" must be between", "\"due\" \"tomorrow\"", "unknown job type \"nope\"", "field \"user\" must be an integer",
                "field \"autoRetry\" must be true or false", "give \"user\" or \"userId\", not both", "\"maxAttempts\" must be at least 1",
            ]
            for (index, message) in expected.enumerated() {
                #expect(many.output.contains("line \(index + 1): \(message)"), "line \(index + 1): \(many.output)")
            }
            #expect(many.output.contains("nothing was scheduled: 11 bad lines"))
            #expect(try await Self.pending(client, ns) == 0)
        }
    }

    @Test("5,000 lines in batches of 1,000; a bad line in the last batch writes none of the earlier ones")
    func largeFile() async throws {
        try await TestRedis.withClient { client, ns in
            let url = try await TestRedis.url()
            var lines = (1...5000).map { #"{"type":"echo","user":\#($0),"data":{"n":\#($0)}}"# }
            let arguments = ["schedule", "--from", "@input", "--redis", url, "--namespace", ns]
            var broken = lines
            broken[4499] = #"{"type":"echo","user":4500,"data":{"n":}}"#
            let refused = try await Self.run(arguments, input: broken.joined(separator: "\n"))
            #expect(refused.status == 2 && refused.output.contains("line 4500: not valid JSON"), "\(refused.output)")
            #expect(try await Self.pending(client, ns) == 0)

            lines.append("")
            let result = try await Self.run(arguments, input: lines.joined(separator: "\n"))
            #expect(result.status == 0, "\(result.output)")
            for done in stride(from: 1000, through: 5000, by: 1000) {
                #expect(result.output.contains("scheduled \(done)/5000 jobs\n"))
            }
            #expect(result.output.contains("scheduled 5000 jobs from"))
            #expect(try await Self.pending(client, ns) == 5000)
            let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: ns, partitionTags: TestRedis.partitionTags)))
            let last = try await scheduler.jobs(type: "echo", userId: 5000)
            #expect(last.map(\.dataJSON) == [#"{"n":5000}"#])
        }
    }

    @Test("Redis failing part-way (maxmemory reached): the error names the lines, earlier batches stay scheduled (exit 1)")
    func redisFailsPartWay() async throws {
        // A private server: its maxmemory must not touch the other tests.
        let server = try await RedisServerProcess.start()
        let client = RedisClient(configuration: try RedisConfiguration(url: server.url))
        do {
            let info = try await client.send("INFO", "memory").string ?? ""
            let used = try #require(info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("used_memory:") }.flatMap { Int($0.dropFirst(12)) })
            _ = try await client.send("CONFIG", "SET", "maxmemory", String(used + 1_500_000))
            _ = try await client.send("CONFIG", "SET", "maxmemory-policy", "noeviction")
            let padding = String(repeating: "x", count: 400)
            let lines = (1...20_000).map { #"{"type":"echo","user":\#($0),"data":"\#(padding)"}"# }
            let result = try await Self.run(
                ["schedule", "--from", "@input", "--redis", server.url, "--namespace", "oom"], input: lines.joined(separator: "\n"))
            #expect(result.status == 1, "\(result.output)")
            let error = try #require(result.output.split(separator: "\n").first { $0.hasPrefix("error: ") }, "\(result.output)")
            let match = try #require(
                error.firstMatch(
                    of:
                        #/lines (\d+)–(\d+): .*the (\d+) jobs before line (\d+) were scheduled, lines \d+–\d+ may be partly scheduled, later lines were not sent/#
                ), "\(error)")
            let (first, last, before) = (Int(match.1)!, Int(match.2)!, Int(match.3)!)
            #expect(first > 1 && last == first + 999 && before == first - 1 && Int(match.4) == first)
            _ = try await client.send("CONFIG", "SET", "maxmemory", "0")
            let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: "oom")))
            let pending = try await scheduler.counts()[.pending] ?? 0
            #expect(pending >= before && pending <= last, "every job before the failed batch is in Redis, none after it")
        } catch {
            await client.shutdown()
            await server.stop()
            throw error
        }
        await client.shutdown()
        await server.stop()
    }

    @Test("--from refuses per-job flags and an unreadable file")
    func fromArguments() async throws {
        expectRejected(["schedule", "echo", "--from", "jobs.jsonl"], mentioning: "drop a job type")
        expectRejected(["schedule", "--from", "jobs.jsonl", "--user", "1"], mentioning: "drop --user")
        expectRejected(["schedule", "--from", "jobs.jsonl", "--due", "+1s", "--auto-retry"], mentioning: "--due, --auto-retry")
        expectRejected(["schedule", "--user", "1"], mentioning: "--from")
        expectRejected(["schedule", "echo", "--user", "1", "--max-attempts", "0"], mentioning: "--max-attempts")
        try ConveyorCLI.validate(arguments: ["schedule", "--from", "-", "--json"])
        try ConveyorCLI.validate(arguments: ["schedule", "echo", "--user", "1", "--auto-retry", "--max-attempts", "3", "--backoff-max-delay", "60000"])
        let url = try await TestRedis.url()
        let result = try await Self.run(["schedule", "--from", "/nonexistent/jobs.jsonl", "--redis", url], input: "")
        #expect(result.status == 1 && result.output.contains("--from /nonexistent/jobs.jsonl: cannot read"), "\(result.output)")
    }
}

@Suite("CLI help")
struct CLIHelpTests {
    static func commands(_ command: any ParsableCommand.Type) -> [any ParsableCommand.Type] {
        [command] + command.configuration.subcommands.flatMap { commands($0) }
    }

    @Test("every command's --help shows an example, and every example parses")
    func examples() {
        // DemoCommand is listed only when the app runs the demo's types; check it too.
        let all = Self.commands(ConveyorCommand.self) + [DemoCommand.self]
        #expect(all.count >= 15)
        var checked = 0
        for command in all {
            // Wide enough that no example wraps; the command's own help (demo is not a listed subcommand).
            let help = command.helpMessage(columns: 250)
            #expect(help.contains("Example"), "\(command._commandName) has no example")
            for example in Self.examples(help) {
                checked += 1
                do {
                    // demo is listed only in apps with its job types, which this test process has not installed.
                    if command == DemoCommand.self, example.first == "demo" {
                        _ = try DemoCommand.parse(Array(example.dropFirst()))
                    } else {
                        try ConveyorCLI.validate(arguments: example)
                    }
                } catch {
                    Issue.record("\(command._commandName): example \(example) does not parse: \(ConveyorCommand.message(for: error))")
                }
            }
        }
        #expect(checked >= 35, "the examples were found and parsed")
    }

    /// The `conveyor …` lines of a help text, split as a shell would (quotes
    /// only); a --token-file under /run/secrets (a container's) becomes a real file.
    static func examples(_ help: String) -> [[String]] {
        help.split(separator: "\n").compactMap { line -> [String]? in
            let text = line.trimmingCharacters(in: .whitespaces)
            var command = text.components(separatedBy: "| ").last ?? text
            if command.hasPrefix("CONVEYOR_HISTORY_DIR=") {
                // An environment assignment: passed as the flag it stands for.
                let assignment = command.prefix { $0 != " " }
                command = String(command.dropFirst(assignment.count + 1)) + " --history-dir " + assignment.dropFirst("CONVEYOR_HISTORY_DIR=".count)
            }
            guard command.hasPrefix("conveyor ") else { return nil }
            var words: [String] = []
            var word = ""
            var quote: Character?
            var inWord = false
            for character in command.split(separator: ">").first ?? "" {
                if let open = quote {
                    if character == open { quote = nil } else { word.append(character) }
                } else if character == "'" || character == "\"" {
                    quote = character
                    inWord = true
                } else if character == " " {
                    if inWord { words.append(word) }
                    word = ""
                    inWord = false
                } else {
                    word.append(character)
                    inWord = true
                }
            }
            if inWord { words.append(word) }
            return words.dropFirst().map { $0.hasPrefix("/run/secrets/") ? Self.tokenFile : $0 }
        }
    }

    static let tokenFile: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("help-token-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: path, contents: Data("0123456789abcdef0123456789abcdef".utf8))
        return path
    }()
}
