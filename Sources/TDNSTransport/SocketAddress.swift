#if canImport(Glibc)
import Glibc
#endif
import TDNSCore

/// An IP address and a port: where a server listens, where a query goes, who sent a request.
///
/// Only literal addresses are accepted — no name resolution ever happens inside the library
/// (a resolver call from inside named would be a loop, and from anywhere an unbounded wait).
/// Equality compares the address bytes, so `"[::0:1]:53"` equals `"[::1]:53"`.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address family.
    public enum Family: Sendable, Hashable {
        case ipv4, ipv6
    }

    /// The address in network byte order: 4 bytes for IPv4, 16 for IPv6.
    public let addressBytes: [UInt8]
    /// The port; 0 asks the kernel for an ephemeral port when binding.
    public let port: UInt16

    /// Parses `"192.0.2.1:53"` or `"[2001:db8::1]:53"`: a literal address (IPv6 in brackets, no
    /// zone index) and a decimal port 0–65535.
    ///
    /// - Throws: `.malformed` for anything else.
    public init(_ text: String) throws(TDNSError) {
        let utf8 = Array(text.utf8)
        guard !utf8.isEmpty, utf8.count <= 64 else { throw .malformed("socket address \"\(Self.printable(text))\" is not \"ip:port\"") }
        let hostBytes: ArraySlice<UInt8>
        let portBytes: ArraySlice<UInt8>
        let family: Family
        if utf8[0] == UInt8(ascii: "[") {
            guard let close = utf8.firstIndex(of: UInt8(ascii: "]")), close + 1 < utf8.count,
                utf8[close + 1] == UInt8(ascii: ":")
            else { throw .malformed("socket address \"\(Self.printable(text))\" is not \"[ipv6]:port\"") }
            hostBytes = utf8[1..<close]
            portBytes = utf8[(close + 2)...]
            family = .ipv6
        } else {
            guard let colon = utf8.firstIndex(of: UInt8(ascii: ":")), utf8.lastIndex(of: UInt8(ascii: ":")) == colon else {
                throw .malformed("socket address \"\(Self.printable(text))\" is not \"ipv4:port\" (IPv6 needs brackets)")
            }
            hostBytes = utf8[..<colon]
            portBytes = utf8[(colon + 1)...]
            family = .ipv4
        }
        let host = String(decoding: hostBytes, as: UTF8.self)
        guard let bytes = Self.parseIP(host, family) else {
            throw .malformed("\"\(Self.printable(host))\" is not a literal \(family == .ipv4 ? "IPv4" : "IPv6") address")
        }
        guard let port = Self.parsePort(portBytes) else {
            throw .malformed("port in \"\(Self.printable(text))\" is not a number 0–65535")
        }
        self.addressBytes = bytes
        self.port = port
    }

    /// An address from a literal IPv4 or IPv6 host (brackets optional) and a port.
    ///
    /// - Throws: `.malformed` when `host` is not a literal address.
    public init(host: String, port: UInt16) throws(TDNSError) {
        var text = Substring(host)
        if text.hasPrefix("["), text.hasSuffix("]"), text.count >= 2 {
            text = text.dropFirst().dropLast()
        }
        let literal = String(text)
        guard let bytes = Self.parseIP(literal, literal.contains(":") ? .ipv6 : .ipv4) else {
            throw .malformed("\"\(Self.printable(host))\" is not a literal IPv4 or IPv6 address")
        }
        self.addressBytes = bytes
        self.port = port
    }

    /// The same address with another port.
    public func with(port: UInt16) -> SocketAddress {
        SocketAddress(bytes: addressBytes, port: port)
    }

    public var family: Family { addressBytes.count == 4 ? .ipv4 : .ipv6 }

    /// The address alone, `"192.0.2.1"` or `"2001:db8::1"` (RFC 5952 form, no brackets).
    public var host: String {
        if addressBytes.count == 4 {
            return addressBytes.map { String($0) }.joined(separator: ".")
        }
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let ok = addressBytes.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { dst in
                inet_ntop(AF_INET6, src.baseAddress, dst.baseAddress, socklen_t(dst.count - 1)) != nil
            }
        }
        guard ok else { return "::" }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `"192.0.2.1:53"` or `"[2001:db8::1]:53"`; parses back with ``init(_:)``.
    public var description: String {
        family == .ipv4 ? "\(host):\(port)" : "[\(host)]:\(port)"
    }

    // MARK: internals

    init(bytes: [UInt8], port: UInt16) {
        self.addressBytes = bytes
        self.port = port
    }

    /// The address of a kernel-filled sockaddr; nil for other families.
    init?(storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let sin = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            self.init(bytes: withUnsafeBytes(of: sin.sin_addr) { Array($0) }, port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            let sin6 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            self.init(bytes: withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }, port: UInt16(bigEndian: sin6.sin6_port))
        default:
            return nil
        }
    }

    /// Calls `body` with this address as a `sockaddr` and its length.
    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        if family == .ipv4 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: addressBytes) }
            return withUnsafePointer(to: &sin) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: addressBytes) }
        return withUnsafePointer(to: &sin6) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
    }

    private static func parseIP(_ host: String, _ family: Family) -> [UInt8]? {
        // inet_pton reads a C string: an embedded NUL would silently cut the text short.
        guard !host.isEmpty, host.utf8.count <= 45, !host.utf8.contains(0) else { return nil }
        if family == .ipv4 {
            var addr = in_addr()
            guard inet_pton(AF_INET, host, &addr) == 1 else { return nil }
            return withUnsafeBytes(of: addr) { Array($0) }
        }
        var addr6 = in6_addr()
        guard inet_pton(AF_INET6, host, &addr6) == 1 else { return nil }
        return withUnsafeBytes(of: addr6) { Array($0) }
    }

    private static func parsePort(_ digits: ArraySlice<UInt8>) -> UInt16? {
        guard (1...5).contains(digits.count) else { return nil }
        var value = 0
        for d in digits {
            guard d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(d - UInt8(ascii: "0"))
        }
        return UInt16(exactly: value)
    }

    /// Input echoed in an error reason: bounded, control characters replaced.
    private static func printable(_ text: String) -> String {
        String(text.unicodeScalars.prefix(64).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
    }
}
