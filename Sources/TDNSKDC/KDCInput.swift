import TDNSCore
import TDNSWire

/// Checks of operator input. Every failure is `.config` with a one-line reason that names the
/// offending value (the CLI prints it and exits 2).
public enum KDCInput {
    /// A fully qualified domain name with trailing dot, returned lowercase (PROTOCOL §1: node
    /// IDs and the control zone are FQDNs with the dot).
    public static func fqdn(_ text: String, what: String) throws(TDNSError) -> String {
        guard text.hasSuffix("."), text.count > 1 else {
            throw .config("\(what) \"\(text.prefix(80))\" is not a fully qualified domain name with a trailing dot")
        }
        let name: DNSName
        do {
            name = try DNSName(text)
        } catch {
            throw .config("\(what) \"\(text.prefix(80))\": \(error.reason)")
        }
        return name.canonical.description
    }

    /// `IPv4:port` or `[IPv6]:port`, port 1–65535. Returned as given (normalized IPv4 text).
    public static func address(_ text: String, what: String) throws(TDNSError) -> String {
        guard let (host, port) = splitAddress(text), port > 0 else {
            throw .config("\(what) \"\(text.prefix(80))\" is not IP:port (IPv4 a.b.c.d:port or [IPv6]:port)")
        }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The host and port of `IPv4:port` / `[IPv6]:port`; nil when malformed.
    public static func splitAddress(_ text: String) -> (host: String, port: UInt16)? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()), isIPv6(host) else { return nil }
            return (host.lowercased(), port)
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = UInt16(parts[1]) else { return nil }
        let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var normalized: [String] = []
        for o in octets {
            guard !o.isEmpty, o.count <= 3, o.allSatisfy({ $0.isASCII && $0.isNumber }), let v = UInt8(o) else { return nil }
            normalized.append(String(v))
        }
        return (normalized.joined(separator: "."), port)
    }

    /// The IP part of an address as `splitAddress` normalizes it.
    public static func host(of address: String) -> String? { splitAddress(address)?.host }

    private static func isIPv6(_ s: String) -> Bool {
        guard !s.isEmpty, s.count <= 45, s.contains(":") else { return false }
        return s.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
    }

    /// 64 hex characters of an X25519 public key, returned lowercase.
    public static func hexKey(_ text: String, what: String) throws(TDNSError) -> String {
        let t = text.lowercased()
        guard t.utf8.count == 64, Hex.decode(Array(t.utf8)) != nil else {
            throw .config("\(what) must be 64 hex characters (a 32-byte X25519 public key)")
        }
        return t
    }
}
