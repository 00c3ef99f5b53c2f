import ArgumentParser
import ConveyorRedis
import ConveyorTesting
import Foundation
import NIOPosix

/// Where Redis is and how to reach it: URL, TLS files and the password's source.
/// Shared by every command (through ``RedisOptions``, and by `demo` directly).
///
/// The password never appears in `--help` (no defaults are shown for it), in
/// errors (files are named, never quoted) or in descriptions of the configuration
/// (``RedisConfiguration/redactedURL``).
struct RedisConnectionOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Redis URL: redis://[user:password@]host[:port][/db], rediss://… for TLS, or unix:///path.sock (default: $REDIS_URL).",
            valueName: "url"
        )
    )
    var redis: String?

    @Option(name: .customLong(FileSetting.password.flag), help: FileSetting.password.help)
    var passwordFile: String?

    @Option(name: .customLong(FileSetting.tlsCA.flag), help: FileSetting.tlsCA.help)
    var tlsCAFile: String?

    @Option(name: .customLong(FileSetting.tlsCert.flag), help: FileSetting.tlsCert.help)
    var tlsCertFile: String?

    @Option(name: .customLong(FileSetting.tlsKey.flag), help: FileSetting.tlsKey.help)
    var tlsKeyFile: String?

    /// A file given by a flag or, without it, by an environment variable: the table of
    /// their names and help (the names are contracts: scripts and deployments use them).
    struct FileSetting: Sendable {
        /// The flag, without its leading `--`.
        let flag: String
        /// The environment variable the flag falls back to.
        let variable: String
        /// The flag's `--help` text, naming the variable.
        let abstract: String

        var help: ArgumentHelp { ArgumentHelp(abstract, valueName: "path") }
        /// Both spellings, for errors: `--tls-cert-file or REDIS_TLS_CERT_FILE`.
        var eitherName: String { "--\(flag) or \(variable)" }

        static let password = FileSetting(
            flag: "redis-password-file", variable: "REDIS_PASSWORD_FILE",
            abstract:
                "File whose first line is the Redis password (default: $REDIS_PASSWORD_FILE, else $REDIS_PASSWORD). A password in the URL wins over the environment."
        )
        static let tlsCA = FileSetting(
            flag: "tls-ca-file", variable: "REDIS_TLS_CA_FILE",
            abstract:
                "PEM CA certificates to verify the rediss:// server with, instead of the system trust store (default: $REDIS_TLS_CA_FILE)."
        )
        static let tlsCert = FileSetting(
            flag: "tls-cert-file", variable: "REDIS_TLS_CERT_FILE",
            abstract: "PEM client certificate for servers that require one (default: $REDIS_TLS_CERT_FILE)."
        )
        static let tlsKey = FileSetting(
            flag: "tls-key-file", variable: "REDIS_TLS_KEY_FILE",
            abstract: "PEM private key of --tls-cert-file (default: $REDIS_TLS_KEY_FILE)."
        )
    }

    /// The process environment, read through one door so tests can reason about it.
    var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The flag's value, else the environment's, with the name it came by (for errors).
    private func setting(_ flagValue: String?, _ setting: FileSetting) -> (value: String, source: String)? {
        if let flagValue, !flagValue.isEmpty { return (flagValue, "--" + setting.flag) }
        if let value = environment[setting.variable], !value.isEmpty { return (value, setting.variable) }
        return nil
    }

    /// The URL given by flag or environment, if any.
    var explicitURL: String? {
        if let redis, !redis.isEmpty { return redis }
        if let url = environment["REDIS_URL"], !url.isEmpty { return url }
        return nil
    }

    /// The configuration for an explicit URL with the TLS files and password
    /// applied, or `nil` when no URL is given.
    /// - Throws: `ValidationError` for TLS files without `rediss://`, a password
    ///   given twice, or an unreadable password file; never quoting the password.
    func configuration() async throws -> RedisConfiguration? {
        let ca = setting(tlsCAFile, .tlsCA)
        let cert = setting(tlsCertFile, .tlsCert)
        let key = setting(tlsKeyFile, .tlsKey)
        guard let url = explicitURL else {
            if let given = ca ?? cert ?? key {
                throw ValidationError("\(given.source) needs a rediss:// URL (--redis or REDIS_URL)")
            }
            return nil
        }
        var configuration: RedisConfiguration
        do {
            configuration = try RedisConfiguration(url: url)
        } catch {
            throw ValidationError(error.message)
        }
        switch configuration.tls {
        case .disabled:
            if let given = ca ?? cert ?? key {
                throw ValidationError("\(given.source) applies only to TLS: use a rediss:// URL, got \(configuration.redactedURL)")
            }
        case .enabled(var settings):
            if (cert == nil) != (key == nil) {
                throw ValidationError(
                    cert == nil
                        ? "\(key!.source) needs a client certificate too (\(FileSetting.tlsCert.eitherName))"
                        : "\(cert!.source) needs its private key too (\(FileSetting.tlsKey.eitherName))"
                )
            }
            settings.caFile = ca?.value
            settings.certificateFile = cert?.value
            settings.privateKeyFile = key?.value
            configuration.tls = .enabled(settings)
        }
        if let password = try await password(urlHasOne: configuration.password != nil) {
            configuration.password = password
        }
        return configuration
    }

    /// The password from `--redis-password-file`, `REDIS_PASSWORD_FILE` or
    /// `REDIS_PASSWORD`, or `nil` to keep the URL's (which wins over the environment).
    func password(urlHasOne: Bool) async throws -> String? {
        let flag = "--" + FileSetting.password.flag
        if let passwordFile, !passwordFile.isEmpty {
            guard !urlHasOne else {
                throw ValidationError("the password is given twice: in the URL and by \(flag); keep one")
            }
            return try await Self.readPassword(file: passwordFile, source: flag)
        }
        if urlHasOne { return nil }
        if let file = environment[FileSetting.password.variable], !file.isEmpty {
            return try await Self.readPassword(file: file, source: FileSetting.password.variable)
        }
        if let password = environment["REDIS_PASSWORD"], !password.isEmpty { return password }
        return nil
    }

    /// The file's first line without its line ending (a file read blocks, so it
    /// is read on NIO's thread pool). Errors name the file, never its content.
    static func readPassword(file: String, source: String) async throws -> String {
        let text: String?
        do {
            text = try await NIOThreadPool.singleton.runIfActive {
                guard let data = FileManager.default.contents(atPath: file) else { return nil as String? }
                return String(data: data, encoding: .utf8)
            }
        } catch {
            throw ValidationError("\(source): cannot read \(file)")
        }
        guard let text else {
            let exists = FileManager.default.fileExists(atPath: file)
            throw ValidationError("\(source): \(file) \(exists ? "is not readable UTF-8 text" : "does not exist")")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        guard lines.count == 1 else {
            throw ValidationError("\(source): \(file) must hold the password on one line, it has \(lines.count)")
        }
        let password = lines[0].hasSuffix("\r") ? String(lines[0].dropLast()) : String(lines[0])
        guard !password.isEmpty else { throw ValidationError("\(source): \(file) holds an empty password") }
        return password
    }

    /// A client for the configured server; fails clearly when none is given and
    /// nothing answers on 127.0.0.1:6379 (one-shot commands on a private server
    /// would write into a server that vanishes as they exit).
    func client() async throws -> RedisClient {
        if let configuration = try await configuration() {
            return RedisClient(configuration: configuration)
        }
        if let local = await localDefault() { return RedisClient(configuration: local) }
        throw CLIError(
            "no Redis server: pass --redis URL or set REDIS_URL (nothing answers on 127.0.0.1:6379). `conveyor demo` starts a private one."
        )
    }

    /// A client, starting a private redis-server when no URL is given and
    /// nothing answers on 127.0.0.1:6379. The server lives as long as this process.
    func clientOrEmbeddedServer(log: (String) -> Void) async throws -> (RedisClient, RedisServerProcess?) {
        if let configuration = try await configuration() {
            return (RedisClient(configuration: configuration), nil)
        }
        if let local = await localDefault() {
            log("using the Redis server on 127.0.0.1:6379")
            return (RedisClient(configuration: local), nil)
        }
        let server = try await RedisServerProcess.start()
        log("started a private redis-server on \(server.url) (stopped when this process exits)")
        return (RedisClient(configuration: try RedisConfiguration(url: server.url)), server)
    }

    private func localDefault() async -> RedisConfiguration? {
        var configuration = RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: 6379))
        configuration.connectTimeout = .milliseconds(300)
        configuration.password = try? await password(urlHasOne: false)
        guard let connection = try? await RedisConnection.connect(configuration: configuration) else { return nil }
        await connection.close()
        return configuration
    }
}
