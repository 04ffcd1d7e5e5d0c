import Testing
import TDNSCore
import TDNSTestSupport
@testable import TDNSTransport

@Suite("SocketAddress")
struct SocketAddressTests {
    @Test("IPv4 and bracketed IPv6 with ports parse and print back")
    func parses() throws {
        let v4 = try SocketAddress("127.0.0.1:5353")
        #expect(v4.host == "127.0.0.1")
        #expect(v4.port == 5353)
        #expect(v4.family == .ipv4)
        #expect(v4.description == "127.0.0.1:5353")
        let v6 = try SocketAddress("[::1]:53")
        #expect(v6.host == "::1")
        #expect(v6.port == 53)
        #expect(v6.family == .ipv6)
        #expect(v6.description == "[::1]:53")
        #expect(try SocketAddress("[2001:DB8:0:0::1]:0").description == "[2001:db8::1]:0")
        #expect(try SocketAddress("0.0.0.0:65535").port == 65535)
        #expect(try SocketAddress("[::0:1]:53") == v6)
        #expect(try SocketAddress(v6.description) == v6)
        #expect(try SocketAddress(host: "127.0.0.1", port: 5353) == v4)
        #expect(try SocketAddress(host: "::1", port: 53) == v6)
        #expect(try SocketAddress(host: "[::1]", port: 53) == v6)
        #expect(v4.with(port: 1).description == "127.0.0.1:1")
        #expect(Set([v4, try SocketAddress("127.0.0.1:5353"), v6]).count == 2)
    }

    @Test(
        "anything but a literal address and a port 0–65535 is malformed",
        arguments: [
            "", "127.0.0.1", "127.0.0.1:", ":53", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:5a",
            "127.0.0.1:123456", "localhost:53", "::1:53", "[::1]53", "[::1]", "[::1:53", "[127.0.0.1]:53",
            "[fe80::1%eth0]:53", "192.0.2:53", "192.0.2.1.5:53", "192.0.2.256:53", " 127.0.0.1:53", "127.0.0.1:53 ",
            "127.0.0.1\u{0}:53", "127.0.0.1:+53", String(repeating: "1", count: 100),
        ]
    )
    func rejects(_ text: String) {
        expectCode(.malformed, "\(text.debugDescription)") { _ = try SocketAddress(text) }
    }

    @Test("init(host:port:) rejects names and junk")
    func rejectsHosts() {
        for host in ["", "localhost", "example.com", "192.0.2.1:53", "[::1", "::1]", "::g", "192.0.2.1\u{0}"] {
            expectCode(.malformed, "\(host.debugDescription)") { _ = try SocketAddress(host: host, port: 53) }
        }
    }
}
