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
}
