import Testing
import TDNSCore
@testable import TDNSTransport

/// The metrics responder's request handling (the socket side is tested by the kdc and bind9
/// suites: caps, deadlines, slow peers).
@Suite("HTTPMetricsServer")
struct HTTPMetricsServerTests {
    func answer(_ request: String) -> String {
        let bytes = Array(request.utf8)
        guard let end = HTTPMetricsLoop.headerEnd(bytes) else { return "<incomplete>" }
        return String(decoding: HTTPMetricsLoop.respond(to: Array(bytes[0..<end])) { "m 1\n" }, as: UTF8.self)
    }

    func status(_ request: String) -> String {
        String(answer(request).split(separator: "\r\n").first ?? "")
    }

    @Test("GET /metrics: 200 with the rendered text, Content-Length and Connection: close")
    func ok() {
        let a = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(a.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(a.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        #expect(a.contains("Content-Length: 4\r\n"))
        #expect(a.contains("Connection: close\r\n"))
        #expect(a.hasSuffix("\r\n\r\nm 1\n"))
        #expect(status("GET /metrics?x=1 HTTP/1.0\n\n") == "HTTP/1.1 200 OK")
    }

    @Test("other paths 404, other methods 405 with Allow, malformed request lines 400")
    func errors() {
        #expect(status("GET / HTTP/1.1\r\n\r\n") == "HTTP/1.1 404 Not Found")
        #expect(status("GET /metricsx HTTP/1.1\r\n\r\n") == "HTTP/1.1 404 Not Found")
        #expect(status("POST /metrics HTTP/1.1\r\n\r\n") == "HTTP/1.1 405 Method Not Allowed")
        #expect(answer("HEAD /metrics HTTP/1.1\r\n\r\n").contains("Allow: GET\r\n"))
        #expect(status("GET /metrics HTTP/2.0\r\n\r\n") == "HTTP/1.1 400 Bad Request")
        #expect(status("GET /metrics\r\n\r\n") == "HTTP/1.1 400 Bad Request")
        #expect(status("GET  /metrics HTTP/1.1\r\n\r\n") == "HTTP/1.1 400 Bad Request")
        #expect(status("GET metrics HTTP/1.1\r\n\r\n") == "HTTP/1.1 400 Bad Request")
        #expect(status("\u{FF}\u{FE} / HTTP/1.1\r\n\r\n") == "HTTP/1.1 405 Method Not Allowed")
    }

    @Test("the end of the headers: CRLF CRLF or LF LF, nothing before")
    func headerEnd() {
        #expect(HTTPMetricsLoop.headerEnd(Array("GET / HTTP/1.1\r\nA: b\r\n".utf8)) == nil)
        #expect(HTTPMetricsLoop.headerEnd(Array("GET / HTTP/1.1\r\n\r\n".utf8)) == 14)
        #expect(HTTPMetricsLoop.headerEnd(Array("GET / HTTP/1.1\n\n".utf8)) == 14)
        #expect(HTTPMetricsLoop.headerEnd([]) == nil)
    }

    @Test("limits out of range are refused")
    func options() {
        #expect(throws: TDNSError.self) { try HTTPMetricsServer.Options(maxConnections: 0).validated() }
        #expect(throws: TDNSError.self) { try HTTPMetricsServer.Options(maxConnections: 2, maxConnectionsPerSource: 3).validated() }
        #expect(throws: TDNSError.self) { try HTTPMetricsServer.Options(requestTimeout: 0).validated() }
    }
}
