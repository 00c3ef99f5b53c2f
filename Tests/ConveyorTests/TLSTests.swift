import ConveyorRedis
import ConveyorTesting
import Foundation
import Testing

@testable import Conveyor

/// `rediss://` against a real redis-server serving TLS with a throwaway CA
/// (made with openssl per test run): the scheduling, worker and archiver path,
/// verification failures, mutual TLS, and the CLI's TLS flags and environment.
@Suite("TLS", .serialized)
struct TLSTests {
    static let pki = Task { try await TestCertificates.make() }

    static func server(requireClientCertificates: Bool = false, wrongHost: Bool = false) async throws -> RedisServerProcess {
        let pki = try await pki.value
        return try await RedisServerProcess.start(
            .init(
                tls: .init(
                    certificateFile: wrongHost ? pki.wrongHostCertificateFile : pki.serverCertificateFile,
                    keyFile: wrongHost ? pki.wrongHostKeyFile : pki.serverKeyFile, caFile: pki.caFile,
                    requireClientCertificates: requireClientCertificates
                )
            )
        )
    }

    static func configuration(
        _ url: String, caFile: String?, certificateFile: String? = nil, keyFile: String? = nil, serverHostname: String? = nil
    ) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        guard case .enabled(var settings) = configuration.tls else { throw RedisError(.invalidURL, message: "not rediss://") }
        settings.caFile = caFile
        settings.certificateFile = certificateFile
        settings.privateKeyFile = keyFile
        if let serverHostname { settings.serverHostname = serverHostname }
        configuration.tls = .enabled(settings)
        configuration.connectTimeout = .seconds(5)
        configuration.commandTimeout = .seconds(30)
        return configuration
    }

    /// The error connecting with `configuration` fails with.
    static func connectError(_ configuration: RedisConfiguration) async -> RedisError? {
        do {
            let connection = try await RedisConnection.connect(configuration: configuration)
            // TLS 1.3 completes the client's handshake before the server checks the
            // client certificate: its rejection arrives with the first reply.
            defer { Task { await connection.close() } }
            _ = try await connection.send(RedisCommand("PING"))
            return nil
        } catch {
            return error
        }
    }

    @Test("schedule, worker run and archiver over rediss://localhost with a CA file (SNI and DNS name verified)")
    func pathOverTLS() async throws {
        let pki = try await Self.pki.value
        let server = try await Self.server()
        defer { Task { await server.stop() } }
        let client = RedisClient(configuration: try Self.configuration("rediss://localhost:\(server.port)", caFile: pki.caFile))
        let namespace = "tls-\(UUID().uuidString)"
        let outcome = try await ProductionPath.run(client, namespace: namespace)
        ProductionPath.expectComplete(outcome)
        await client.shutdown()
        // The TCP port spoke TLS only: a plain client gets no PONG there.
        var plain = RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: server.port))
        plain.connectTimeout = .seconds(2)
        let plainError = await Self.connectError(plain)
        #expect(plainError != nil)
    }

    @Test("verification failures name their cause: untrusted CA, system trust store, host name mismatch, no TLS on the port, missing CA file")
    func verificationFailures() async throws {
        let pki = try await Self.pki.value
        let server = try await Self.server()
        defer { Task { await server.stop() } }
        let url = "rediss://127.0.0.1:\(server.port)"

        let otherCA = await Self.connectError(try Self.configuration(url, caFile: pki.otherCAFile))
        #expect(otherCA?.code == .tlsVerificationFailed, "\(String(describing: otherCA))")
        #expect(otherCA?.message.contains("not trusted by the CA file \(pki.otherCAFile)") == true, "\(String(describing: otherCA))")

        let systemStore = await Self.connectError(try Self.configuration(url, caFile: nil))
        #expect(systemStore?.code == .tlsVerificationFailed, "\(String(describing: systemStore))")
        #expect(systemStore?.message.contains("system trust store") == true, "\(String(describing: systemStore))")

        // A server presenting a certificate (from the trusted CA) for another host name,
        // reached by name and by address.
        let wrongHostServer = try await Self.server(wrongHost: true)
        defer { Task { await wrongHostServer.stop() } }
        for host in ["localhost", "127.0.0.1"] {
            let wrongName = await Self.connectError(try Self.configuration("rediss://\(host):\(wrongHostServer.port)", caFile: pki.caFile))
            #expect(wrongName?.code == .tlsVerificationFailed, "\(String(describing: wrongName))")
            #expect(wrongName?.message.contains("is not valid for \"\(host)\"") == true, "\(String(describing: wrongName))")
        }
        // The name the certificate is for, given as the name to verify (a tunnel's case): accepted.
        let overridden = await Self.connectError(
            try Self.configuration("rediss://127.0.0.1:\(wrongHostServer.port)", caFile: pki.caFile, serverHostname: "redis.example.test")
        )
        #expect(overridden == nil, "\(String(describing: overridden))")

        // The right CA and the IP address (matched against the certificate's IP entry): it works.
        let good = await Self.connectError(try Self.configuration(url, caFile: pki.caFile))
        #expect(good == nil, "\(String(describing: good))")

        let plainServer = try await RedisServerProcess.start()
        defer { Task { await plainServer.stop() } }
        var toPlainPort = try Self.configuration("rediss://127.0.0.1:\(plainServer.port)", caFile: pki.caFile)
        toPlainPort.connectTimeout = .seconds(1)
        let notTLS = await Self.connectError(toPlainPort)
        #expect(notTLS?.code == .tlsHandshakeFailed, "\(String(describing: notTLS))")
        #expect(notTLS?.message.contains("plain redis:// port") == true, "\(String(describing: notTLS))")

        let missing = await Self.connectError(try Self.configuration(url, caFile: pki.directory + "/nope.pem"))
        #expect(missing?.code == .tlsConfiguration, "\(String(describing: missing))")
        #expect(missing?.message.contains("does not exist") == true)

        // Through the pooled client, the first command fails with the same precise error.
        let client = RedisClient(configuration: try Self.configuration(url, caFile: pki.otherCAFile))
        await #expect {
            _ = try await client.send("PING")
        } throws: { error in
            (error as? RedisError)?.code == .tlsVerificationFailed
        }
        await client.shutdown()
    }

    @Test(
        "mutual TLS: without a client certificate or with one from another CA the server refuses; with the right one the path runs",
        .timeLimit(.minutes(2))
    )
    func mutualTLS() async throws {
        let pki = try await Self.pki.value
        let server = try await Self.server(requireClientCertificates: true)
        defer { Task { await server.stop() } }
        let url = "rediss://localhost:\(server.port)"

        // The server's rejection races the client's first command (TLS 1.3 ends the
        // client's handshake first); it used to leave that command waiting forever
        // at times. Every attempt must end, with the precise error.
        for _ in 0..<20 {
            let without = await Self.connectError(try Self.configuration(url, caFile: pki.caFile))
            #expect(without?.code == .tlsHandshakeFailed, "\(String(describing: without))")
            #expect(without?.message.contains("requires a client certificate") == true, "\(String(describing: without))")
        }

        let foreign = await Self.connectError(
            try Self.configuration(url, caFile: pki.caFile, certificateFile: pki.otherClientCertificateFile, keyFile: pki.otherClientKeyFile)
        )
        #expect(foreign?.code == .tlsHandshakeFailed, "\(String(describing: foreign))")
        #expect(foreign?.message.contains("does not accept the client certificate") == true, "\(String(describing: foreign))")

        // A key that does not belong to the certificate is a configuration error, before any connection.
        let mismatched = await Self.connectError(
            try Self.configuration(url, caFile: pki.caFile, certificateFile: pki.clientCertificateFile, keyFile: pki.otherClientKeyFile)
        )
        #expect(mismatched?.code == .tlsConfiguration, "\(String(describing: mismatched))")
        #expect(mismatched?.message.contains("does not belong to the client certificate") == true, "\(String(describing: mismatched))")

        let client = RedisClient(
            configuration: try Self.configuration(url, caFile: pki.caFile, certificateFile: pki.clientCertificateFile, keyFile: pki.clientKeyFile)
        )
        let outcome = try await ProductionPath.run(client, namespace: "mtls-\(UUID().uuidString)", perType: 2)
        ProductionPath.expectComplete(outcome, perType: 2)
        await client.shutdown()
    }

    @Test(
        "CLI: --tls-ca-file/--tls-cert-file/--tls-key-file and REDIS_TLS_* reach the connection; a worker process runs jobs over mutual TLS; a wrong CA is reported as such"
    )
    func commandLine() async throws {
        let pki = try await Self.pki.value
        let server = try await Self.server(requireClientCertificates: true)
        defer { Task { await server.stop() } }
        let url = "rediss://localhost:\(server.port)"
        let flags = ["--redis", url, "--tls-ca-file", pki.caFile, "--tls-cert-file", pki.clientCertificateFile, "--tls-key-file", pki.clientKeyFile]

        let byFlags = try await ConveyorProcess.output(["ping", "--count", "1"] + flags)
        #expect(byFlags.contains("PONG") && byFlags.contains("server: rediss://localhost:\(server.port)"), "\(byFlags)")

        let environment = [
            "REDIS_URL": url, "REDIS_TLS_CA_FILE": pki.caFile, "REDIS_TLS_CERT_FILE": pki.clientCertificateFile,
            "REDIS_TLS_KEY_FILE": pki.clientKeyFile,
        ]
        let byEnvironment = try await ConveyorProcess.output(["ping", "--count", "1"], environment: environment)
        #expect(byEnvironment.contains("PONG"), "\(byEnvironment)")

        let wrongCA = try await ConveyorProcess.output(
            [
                "ping", "--count", "1", "--redis", url, "--tls-ca-file", pki.otherCAFile, "--tls-cert-file", pki.clientCertificateFile,
                "--tls-key-file", pki.clientKeyFile,
            ]
        )
        #expect(wrongCA.contains("tlsVerificationFailed") && wrongCA.contains("not trusted by the CA file"), "\(wrongCA)")

        let noClientCertificate = try await ConveyorProcess.output(["ping", "--count", "1", "--redis", url, "--tls-ca-file", pki.caFile])
        #expect(noClientCertificate.contains("requires a client certificate"), "\(noClientCertificate)")

        let plainURL = try await ConveyorProcess.output(["ping", "--redis", "redis://localhost:\(server.port)", "--tls-ca-file", pki.caFile])
        #expect(plainURL.contains("--tls-ca-file applies only to TLS"), "\(plainURL)")
        let keyOnly = try await ConveyorProcess.output(["ping", "--redis", url, "--tls-key-file", pki.clientKeyFile])
        #expect(keyOnly.contains("needs a client certificate too"), "\(keyOnly)")

        // A worker process over mutual TLS runs jobs scheduled over mutual TLS.
        let client = RedisClient(
            configuration: try Self.configuration(url, caFile: pki.caFile, certificateFile: pki.clientCertificateFile, keyFile: pki.clientKeyFile)
        )
        let namespace = "tls-cli-\(UUID().uuidString)"
        let scheduler = JobScheduler(client: client, configuration: .init(keys: try ConveyorKeys(namespace: namespace)))
        _ = try await scheduler.scheduleJobs((1...20).map { UntypedJobConfig(type: "echo", userId: $0, dataJSON: #"{"n":\#($0)}"#) })
        let worker = try ConveyorProcess.start(["worker", "--namespace", namespace, "--log-level", "info"] + flags)
        let done = try await eventually(timeout: .seconds(60)) { try await scheduler.counts()[.finished] == 20 }
        #expect(done, "worker log: \(worker.log)")
        let finished = try await scheduler.jobs(state: .finished, limit: 100)
        #expect(finished.count == 20 && finished.allSatisfy { $0.success == true })
        worker.signal(SIGTERM)
        await worker.waitForExit(timeout: .seconds(15))
        await client.shutdown()
    }
}
