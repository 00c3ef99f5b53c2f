import ConveyorRedis
import ConveyorTesting
import Foundation

/// A throwaway PKI made with `openssl` for TLS tests: a CA with a server
/// certificate for `localhost`/`127.0.0.1` and a client certificate, plus an
/// unrelated CA with its own client certificate (for verification failures).
/// EC P-256 keys, valid for two days, in a fresh temporary directory.
public struct TestCertificates: Sendable {
    /// Where the files are.
    public let directory: String

    /// The CA that signed the server and client certificates.
    public var caFile: String { directory + "/ca.crt" }
    /// The server's certificate (SAN `DNS:localhost`, `IP:127.0.0.1`).
    public var serverCertificateFile: String { directory + "/server.crt" }
    /// The server's private key.
    public var serverKeyFile: String { directory + "/server.key" }
    /// A client certificate signed by ``caFile``.
    public var clientCertificateFile: String { directory + "/client.crt" }
    /// Its private key.
    public var clientKeyFile: String { directory + "/client.key" }
    /// A certificate from ``caFile`` for `redis.example.test` only: a server
    /// presenting it at 127.0.0.1 fails host name verification.
    public var wrongHostCertificateFile: String { directory + "/wrong-host.crt" }
    /// Its private key.
    public var wrongHostKeyFile: String { directory + "/wrong-host.key" }
    /// A CA that signed nothing the server presents.
    public var otherCAFile: String { directory + "/other-ca.crt" }
    /// A client certificate signed by ``otherCAFile``: a server trusting only ``caFile`` rejects it.
    public var otherClientCertificateFile: String { directory + "/other-client.crt" }
    /// Its private key.
    public var otherClientKeyFile: String { directory + "/other-client.key" }

    /// Generates the files.
    /// - Throws: ``RedisError`` (`connectionFailed`) naming the `openssl` step that failed, with its output.
    public static func make() async throws -> TestCertificates {
        guard let openssl = RedisServerProcess.findExecutable("openssl") else {
            throw RedisError(.connectionFailed, message: "openssl not found on PATH (scripts/install-deps.sh installs it)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-pki-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        let run = Runner(openssl: openssl, directory: directory)
        try await run.selfSignedCA(name: "ca", commonName: "Conveyor Test CA")
        try await run.selfSignedCA(name: "other-ca", commonName: "Some Other CA")
        try await run.leaf(
            name: "server", ca: "ca", commonName: "localhost",
            extensions: "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
        )
        try await run.leaf(
            name: "wrong-host", ca: "ca", commonName: "redis.example.test",
            extensions: "subjectAltName=DNS:redis.example.test\nextendedKeyUsage=serverAuth\n"
        )
        try await run.leaf(name: "client", ca: "ca", commonName: "conveyor-client", extensions: "extendedKeyUsage=clientAuth\n")
        try await run.leaf(name: "other-client", ca: "other-ca", commonName: "conveyor-client", extensions: "extendedKeyUsage=clientAuth\n")
        return certificates
    }

    private struct Runner {
        let openssl: String
        let directory: String

        func selfSignedCA(name: String, commonName: String) async throws {
            try await openssl(
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-keyout", "\(name).key", "-out", "\(name).crt", "-subj", "/CN=\(commonName)",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                produces: "\(name).crt"
            )
        }

        func leaf(name: String, ca: String, commonName: String, extensions: String) async throws {
            try await openssl(
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(commonName)",
                produces: "\(name).csr"
            )
            let extensionFile = "\(directory)/\(name).ext"
            try (extensions + "basicConstraints=CA:FALSE\n").write(toFile: extensionFile, atomically: true, encoding: .utf8)
            try await openssl(
                "x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).crt", "-CAkey", "\(ca).key",
                "-set_serial", String(UInt32.random(in: 1...UInt32.max)), "-days", "2", "-extfile", extensionFile, "-out", "\(name).crt",
                produces: "\(name).crt"
            )
        }

        /// Runs openssl in `directory` (through `sh -c 'cd … && exec …'`, as
        /// the spawner has no working-directory option) and checks its output file.
        func openssl(_ arguments: String..., produces output: String) async throws {
            let log = "\(directory)/openssl.log"
            let child = try ChildProcess.spawn(
                "/bin/sh", arguments: ["-c", "cd \"$0\" && exec \"$@\"", directory, openssl] + arguments, standardOutput: log
            )
            await child.waitForExit(timeout: .seconds(30))
            guard FileManager.default.fileExists(atPath: "\(directory)/\(output)") else {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw RedisError(.connectionFailed, message: "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(text.suffix(500))")
            }
        }
    }
}
