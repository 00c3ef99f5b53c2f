import Testing

@testable import ConveyorRedis

@Suite("Redis URLs")
struct RedisConfigurationTests {
    @Test func tcpWithEverything() throws {
        let configuration = try RedisConfiguration(url: "redis://alice:p%40ss@cache.local:6380/3")
        #expect(configuration.endpoint == .tcp(host: "cache.local", port: 6380))
        #expect(configuration.username == "alice")
        #expect(configuration.password == "p@ss")
        #expect(configuration.database == 3)
        #expect(configuration.tls == .disabled)
    }

    @Test func defaults() throws {
        let configuration = try RedisConfiguration(url: "redis://localhost")
        #expect(configuration.endpoint == .tcp(host: "localhost", port: 6379))
        #expect(configuration.password == nil && configuration.username == nil && configuration.database == 0)
    }

    @Test func passwordOnlyAndIPv6() throws {
        let configuration = try RedisConfiguration(url: "redis://:secret@[::1]:7000")
        #expect(configuration.endpoint == .tcp(host: "::1", port: 7000))
        #expect(configuration.password == "secret" && configuration.username == nil)
    }

    @Test func unixSocket() throws {
        let configuration = try RedisConfiguration(url: "unix:///tmp/redis.sock?db=2")
        #expect(configuration.endpoint == .unixSocket(path: "/tmp/redis.sock"))
        #expect(configuration.database == 2)
    }

    @Test func tlsHasAPlace() throws {
        let configuration = try RedisConfiguration(url: "rediss://redis.example.com")
        #expect(configuration.tls == .enabled(serverHostname: "redis.example.com"))
    }

    @Test(
        "malformed URLs are rejected with a reason",
        arguments: [
            ("localhost:6379", "expected redis://"),
            ("http://localhost", "unsupported scheme"),
            ("redis://", "missing host"),
            ("redis://host:port", "port must be a number"),
            ("redis://host:70000", "out of range"),
            ("redis://host/db", "database must be"),
            ("unix://relative.sock", "absolute path"),
            ("redis://host?timeout=3", "unknown query parameter"),
            ("redis://secretword@host", "without a password"),
        ]
    )
    func malformed(url: String, reason: String) {
        #expect {
            _ = try RedisConfiguration(url: url)
        } throws: { error in
            guard let error = error as? RedisError else { return false }
            return error.code == .invalidURL && error.message.contains(reason)
        }
    }

    @Test("the password never appears in an error or a description")
    func passwordRedacted() throws {
        do {
            _ = try RedisConfiguration(url: "redis://bob:hunter2@host:notaport")
            Issue.record("expected an error")
        } catch {
            #expect(!"\(error)".contains("hunter2"))
            #expect(!String(reflecting: error).contains("hunter2"))
        }
        let configuration = try RedisConfiguration(url: "redis://bob:hunter2@host")
        #expect(!"\(configuration)".contains("hunter2"))
        #expect(configuration.redactedURL == "redis://bob:***@host:6379/0")
    }

    @Test(
        "a password holding raw URL delimiters never leaks through the parser's error messages",
        arguments: [
            "redis://:se?cr=et9@host", "redis://:se?cret9@host", "redis://u:se/cret9@host:x1", "redis://:s@cret9@host:abc",
            "redis://:sec:ret9@host:99999", "rediss://u:a?db=cret9@host", "redis://host?password=secret9&bogus=1",
            "redis://:se?cret9@host",
        ]
    )
    func delimitersInPassword(url: String) {
        // Every password above contains "et9"; none of it may show.
        do {
            let configuration = try RedisConfiguration(url: url)
            Issue.record("parsed \(configuration.redactedURL), expected an error")
        } catch {
            #expect(!"\(error)".contains("et9"), "\(error)")
            #expect(!String(reflecting: error).contains("et9"))
        }
    }

    @Test("dump and debug descriptions of a configuration never show the password")
    func mirrorRedacted() throws {
        var configuration = try RedisConfiguration(url: "rediss://bob:hunter2@host")
        configuration.tls = .enabled(.init(serverHostname: "host", caFile: "/ca.pem"))
        var dumped = ""
        dump(configuration, to: &dumped)
        #expect(!dumped.contains("hunter2"))
        #expect(dumped.contains("/ca.pem"))
        #expect(!String(reflecting: configuration).contains("hunter2"))
    }

    @Test("user:@host and ?user= name a user whose password is set elsewhere")
    func userWithoutPassword() throws {
        let colon = try RedisConfiguration(url: "rediss://app:@redis.example.com:6380")
        #expect(colon.username == "app" && colon.password == nil)
        let query = try RedisConfiguration(url: "rediss://redis.example.com:6380?user=app")
        #expect(query.username == "app" && query.password == nil)
        #expect(query.tls == .enabled(.init(serverHostname: "redis.example.com")))
    }

    @Test("redis-cli arguments carry the TLS files")
    func commandLineTLS() throws {
        var configuration = try RedisConfiguration(url: "rediss://localhost:6380")
        configuration.tls = .enabled(.init(serverHostname: "localhost", caFile: "/ca", certificateFile: "/c", privateKeyFile: "/k"))
        let expected = ["-h", "localhost", "-p", "6380", "--tls", "--sni", "localhost", "--cacert", "/ca", "--cert", "/c", "--key", "/k"]
        #expect(configuration.commandLineArguments == expected)
    }
}
