import Foundation
import HTTPTypes
import Hummingbird

/// Checks the access token on every request and adds the security headers
/// to every response: a policy that allows no script at all (the pages need
/// none), so even a missed escape could not run one.
struct DashboardAccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let token, !Self.authorized(request.headers[.authorization], token: token) {
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = #"Basic realm="conveyor dashboard", charset="UTF-8""#
            headers[.contentType] = "text/plain; charset=utf-8"
            return Self.secured(Response(status: .unauthorized, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "access token required\n"))))
        }
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError {
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; charset=utf-8"
            let text = (error.body ?? "\(error.status.reasonPhrase)") + "\n"
            response = Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return Self.secured(response)
    }

    static func secured(_ response: Response) -> Response {
        var response = response
        response.headers[.contentSecurityPolicy] =
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        // Not no-referrer: Chromium then sends `Origin: null` on the pages' own form posts.
        response.headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// `Bearer <token>`, or `Basic base64(<any user>:<token>)`.
    static func authorized(_ header: String?, token: String) -> Bool {
        guard let header else { return false }
        if header.hasPrefix("Bearer ") {
            return constantTimeEqual(String(header.dropFirst(7)).trimmingWhitespace, token)
        }
        if header.hasPrefix("Basic "), let data = Data(base64Encoded: String(header.dropFirst(6)).trimmingWhitespace),
            let credentials = String(data: data, encoding: .utf8), let colon = credentials.firstIndex(of: ":")
        {
            return constantTimeEqual(String(credentials[credentials.index(after: colon)...]), token)
        }
        return false
    }
}

/// Compares secrets in time that does not depend on where they differ.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var difference: UInt8 = 0
    for index in x.indices { difference |= x[index] ^ y[index] }
    return difference == 0
}

/// The CSRF token of this dashboard process: random, embedded in every form,
/// required on every POST. Another site can make a browser send a POST but
/// cannot read a page to learn the token (same-origin policy).
struct CSRFToken: Sendable {
    let value: String

    init() {
        var generator = SystemRandomNumberGenerator()
        value = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Whether a POST may act: the form's `csrf` field is the token, and an
    /// `Origin` header, when the browser sends one, names this host.
    func accepts(form: FormFields, request: Request) -> Bool {
        guard let sent = form["csrf"], constantTimeEqual(sent, value) else { return false }
        if let origin = request.headers[.origin], let host = request.head.authority {
            let originHost = origin.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init)
            return originHost == host
        }
        return true
    }
}
