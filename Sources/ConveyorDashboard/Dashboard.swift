import Conveyor
import Foundation
import Hummingbird
import Logging
import Mustache

/// The web dashboard: server-rendered pages over a Conveyor deployment's
/// Redis (and, when configured, its history log), and the operator actions
/// cancel, run again and delete.
///
/// Pages: `/` (overview), `/jobs?state=pending|running|finished&type=&user=`
/// (paged by index), `/jobs/ID` (every field and the `rescheduledFromJob`
/// chain), `/cron`, `/history`. Actions: `POST /jobs/ID/cancel`,
/// `POST /jobs/ID/rerun`, `POST /jobs/ID/delete`, each refused without the
/// page's CSRF token. Bound to loopback unless a token is configured
/// (``DashboardConfiguration/validate()``).
public struct Dashboard: Sendable {
    /// Where and how it serves.
    public let configuration: DashboardConfiguration
    let client: RedisClient
    let logger: Logger
    let pages: DashboardPages

    /// Creates a dashboard.
    /// - Throws: ``DashboardError`` when the configuration is refused, or a template does not parse.
    public init(client: RedisClient, configuration: DashboardConfiguration, logger: Logger = Logger(label: "conveyor.dashboard")) throws {
        try configuration.validate()
        self.configuration = configuration
        self.client = client
        self.logger = logger
        let library: MustacheLibrary
        do {
            library = try DashboardTemplates.library()
        } catch {
            throw DashboardError("a dashboard template does not parse: \(error)")
        }
        self.pages = DashboardPages(
            scheduler: JobScheduler(client: client, configuration: .init(keys: configuration.keys)), configuration: configuration,
            templates: library, csrf: CSRFToken()
        )
    }

    /// The routes, for serving or for tests (HummingbirdTesting).
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: DashboardAccessMiddleware(token: configuration.token))
        let pages = self.pages
        router.get("/") { request, _ in try await pages.overview(request) }
        router.get("/jobs") { request, _ in try await pages.jobList(request) }
        router.get("/jobs/:id") { request, context in try await pages.job(request, id: try Self.id(context)) }
        router.post("/jobs/:id/:action") { request, context in
            try await pages.act(request, id: try Self.id(context), action: context.parameters.get("action") ?? "")
        }
        router.get("/cron") { request, _ in try await pages.cron(request) }
        router.get("/history") { request, _ in try await pages.history(request) }
        return router
    }

    static func id(_ context: BasicRequestContext) throws -> Int {
        guard let id = context.parameters.get("id", as: Int.self), id > 0 else {
            throw HTTPError(.badRequest, message: "a job id is a positive integer")
        }
        return id
    }

    /// Serves until SIGINT or SIGTERM (graceful shutdown).
    /// - Parameter onListening: Called with the bound port once the server listens.
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(configuration.bindAddress, port: configuration.port), serverName: "conveyor-dashboard"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        try await app.runService()
    }
}
