import TDNSCore
import TDNSCrypto

/// The KRS settings given to `krs_init` as `key=value` strings, or in a file named by
/// `config=PATH` (one setting per line, `#` comments and blank lines ignored). Later
/// settings override earlier ones; argv entries override the file's.
///
/// | setting | value | default |
/// |---|---|---|
/// | `node_id` | this node's FQDN, trailing dot | from enrollment |
/// | `control_zone` | the KDC's control zone, trailing dot | from enrollment |
/// | `state_dir` | directory for the replay record, components, audit log and enrollment (created 0700) | required |
/// | `key_store` | `bind` or `none` | `bind` |
/// | `key_dir` | where BIND key files are written | required for `bind` |
/// | `hpke_private_key` | 64 hex characters, or the path of a tdns key file | from enrollment |
/// | `jose_private_key` | private JWK JSON, or the path of a file holding it | from enrollment |
/// | `sig0_private_key` | path of the node's Ed25519 SIG(0) key (PKCS#8 PEM) | from enrollment |
/// | `kdc_address` | the KDC's DNS service, `IP:port` | from enrollment |
/// | `notify_listen` | where NOTIFYs are received, `IP:port` (also the confirmations' source) | none |
/// | `kdc_signing_pubkey` | the KDC's public ES256 JWK, or a path | none |
/// | `require_signature` | `yes` or `no` | `yes` when `kdc_signing_pubkey` is set, else `no` |
/// | `now` | fixed Unix time in seconds (tests) | the system clock |
/// | `max_skew` | tolerated clock skew, seconds or a Go duration | `60s` |
/// | `chunk_rrtype` | `65288` (current tdns) or `65015` (KDC builds of Jan–Mar 2026) | `65288` |
/// | `max_distribution_size` | cap on the bytes of one distribution | 67108864 (64 MiB) |
public struct KRSSettings: Sendable {
    public var nodeID: String?
    public var controlZone: String?
    public var stateDirectory: String
    public var keyStore: KeyStoreKind
    public var keyDirectory: String?
    public var hpkeKey: HPKEPrivateKey?
    public var joseKey: JOSEPrivateKey?
    public var kdcSigningKey: JOSEPublicKey?
    public var sig0Key: DNSSECPrivateKey?
    public var kdcAddress: String?
    public var notifyListen: String?
    public var requireSignature: Bool
    public var fixedNow: Int64?
    public var maxSkew: Int64
    public var chunkRRType: UInt16
    public var maxDistributionSize: Int

    public enum KeyStoreKind: String, Sendable { case bind, none }

    public static let known: Set<String> = [
        "node_id", "control_zone", "state_dir", "key_store", "key_dir", "hpke_private_key",
        "jose_private_key", "kdc_signing_pubkey", "require_signature", "now", "max_skew",
        "chunk_rrtype", "max_distribution_size", "config", "sig0_private_key", "kdc_address", "notify_listen",
    ]
    /// The file enrollment writes into the state directory.
    public static let enrollmentFile = "krs.conf"
    static let maxConfigFile = 64 * 1024
    static let defaultMaxDistributionSize = 64 * 1024 * 1024

    /// A node is *enrolled* when it has a node ID, a control zone and at least one private key;
/// `krs_enroll` writes them to `state_dir/krs.conf`, which is read (with the lowest precedence)
/// whenever it exists, so that a later `krs_init` needs only `state_dir=`.
///
/// Parses `key=value` arguments. Every problem is reported with the setting's name.
    public init(arguments: [String]) throws(TDNSError) {
        var values: [String: String] = [:]
        var fromArgs: [(String, String)] = []
        for arg in arguments {
            fromArgs.append(try Self.split(arg, origin: "argument"))
        }
        if let path = fromArgs.last(where: { $0.0 == "config" })?.1 {
            for (k, v) in try Self.readFile(path) { values[k] = v }
        }
        for (k, v) in fromArgs where k != "config" { values[k] = v }
        // What enrollment stored, for everything not given explicitly.
        if let dir = values["state_dir"], !dir.isEmpty, POSIXFile.exists("\(dir)/\(Self.enrollmentFile)") {
            let path = "\(dir)/\(Self.enrollmentFile)"
            for (k, v) in try Self.readFile(path) where values[k] == nil { values[k] = v }
        }
        try self.init(values: values)
    }

    init(values given: [String: String]) throws(TDNSError) {
        // An empty value means "not set", so a config file's entry can be switched off from argv.
        let values = given.filter { !$0.value.isEmpty }
        func required(_ name: String) throws(TDNSError) -> String {
            guard let v = values[name], !v.isEmpty else { throw .config("\(name): required setting is missing") }
            return v
        }
        nodeID = try values["node_id"].map { (v) throws(TDNSError) in try Self.fqdn(v, setting: "node_id") }
        controlZone = try values["control_zone"].map { (v) throws(TDNSError) in try Self.fqdn(v, setting: "control_zone") }
        stateDirectory = try required("state_dir")

        switch values["key_store"] ?? "bind" {
        case "bind": keyStore = .bind
        case "none": keyStore = .none
        case let other: throw .config("key_store: \"\(other)\" is not bind or none")
        }
        keyDirectory = values["key_dir"]
        if keyStore == .bind && (keyDirectory ?? "").isEmpty {
            throw .config("key_dir: required with key_store=bind")
        }

        hpkeKey = try values["hpke_private_key"].map { (v) throws(TDNSError) -> HPKEPrivateKey in
            try Self.loadKey("hpke_private_key", v, inline: Self.looksLikeHex(v)) { (b) throws(TDNSError) in try HPKEPrivateKey(text: b) }
        }
        joseKey = try values["jose_private_key"].map { (v) throws(TDNSError) -> JOSEPrivateKey in
            try Self.loadKey("jose_private_key", v, inline: v.trimmingWhitespace().hasPrefix("{")) { (b) throws(TDNSError) in try JOSEPrivateKey(jwk: b) }
        }
        sig0Key = try values["sig0_private_key"].map { (v) throws(TDNSError) -> DNSSECPrivateKey in
            try Self.loadKey("sig0_private_key", v, inline: false) { (b) throws(TDNSError) in try DNSSECPrivateKey(pkcs8PEM: b, algorithm: .ed25519) }
        }
        kdcAddress = try values["kdc_address"].map { (v) throws(TDNSError) in try Self.address(v, setting: "kdc_address") }
        notifyListen = try values["notify_listen"].map { (v) throws(TDNSError) in try Self.address(v, setting: "notify_listen") }
        kdcSigningKey = try values["kdc_signing_pubkey"].map { (v) throws(TDNSError) -> JOSEPublicKey in
            try Self.loadKey("kdc_signing_pubkey", v, inline: v.trimmingWhitespace().hasPrefix("{")) { (b) throws(TDNSError) in try JOSEPublicKey(jwk: b) }
        }

        switch values["require_signature"] {
        case nil: requireSignature = kdcSigningKey != nil
        case "yes"?, "true"?, "1"?: requireSignature = true
        case "no"?, "false"?, "0"?: requireSignature = false
        case let other?: throw .config("require_signature: \"\(other)\" is not yes or no")
        }
        if requireSignature && kdcSigningKey == nil {
            throw .config("require_signature: yes needs kdc_signing_pubkey to verify signatures with")
        }

        if let v = values["now"] {
            guard let t = Int64(v), t >= 0 else { throw .config("now: \"\(v)\" is not Unix seconds") }
            fixedNow = t
        }
        maxSkew = try Self.duration(values["max_skew"] ?? "60s", setting: "max_skew")

        switch values["chunk_rrtype"] ?? "65288" {
        case "65288", "CHUNK", "TYPE65288": chunkRRType = 65288
        case "65015", "TYPE65015": chunkRRType = 65015
        case let other: throw .config("chunk_rrtype: \"\(other)\" is not 65288 or 65015")
        }

        if let v = values["max_distribution_size"] {
            guard let n = Int(v), n >= 1024, n <= 1 << 30 else {
                throw .config("max_distribution_size: \"\(v)\" is not a byte count between 1024 and 1073741824")
            }
            maxDistributionSize = n
        } else {
            maxDistributionSize = Self.defaultMaxDistributionSize
        }

        for name in values.keys where !Self.known.contains(name) {
            throw .config("\(name): unknown setting")
        }
    }

    // MARK: helpers

    /// key=value lines of a settings file, `#` comments and blank lines skipped.
    static func readFile(_ path: String) throws(TDNSError) -> [(String, String)] {
        let text: [UInt8]
        do {
            text = try POSIXFile.read(path, limit: Self.maxConfigFile)
        } catch {
            throw .config("config: \(error.reason)")
        }
        var out: [(String, String)] = []
        for (number, line) in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let trimmed = String(decoding: line, as: UTF8.self).trimmingWhitespace()
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let (k, v) = try Self.split(trimmed, origin: "\(path) line \(number + 1)")
            guard k != "config" else { throw .config("config: \(path) line \(number + 1): nested config= is not allowed") }
            out.append((k, v))
        }
        return out
    }

    /// Whether this node can receive distributions: identity and at least one key.
    public var isEnrolled: Bool { nodeID != nil && controlZone != nil && (hpkeKey != nil || joseKey != nil) }

    private static func split(_ arg: String, origin: String) throws(TDNSError) -> (String, String) {
        guard let eq = arg.firstIndex(of: "=") else {
            throw .config("\(origin): \"\(arg.prefix(40))\" is not key=value")
        }
        let key = String(arg[..<eq]).trimmingWhitespace()
        let value = String(arg[arg.index(after: eq)...]).trimmingWhitespace()
        guard known.contains(key) else { throw .config("\(key): unknown setting") }
        return (key, value)
    }

    /// A fully qualified domain name: trailing dot, LDH labels (plus `_`), 1–63 bytes each.
    static func fqdn(_ name: String, setting: String) throws(TDNSError) -> String {
        guard DomainName.isValidFQDN(name) else {
            throw .config("\(setting): \"\(name)\" is not a fully qualified domain name with a trailing dot")
        }
        return name.lowercasedASCII()
    }

    /// `IPv4:port` or `[IPv6]:port`, checked for shape here; the transport resolves it.
    private static func address(_ v: String, setting: String) throws(TDNSError) -> String {
        let ok: Bool
        if v.hasPrefix("[") {
            ok = v.contains("]:")
        } else {
            let parts = v.split(separator: ":", omittingEmptySubsequences: false)
            ok = parts.count == 2 && parts[0].split(separator: ".").count == 4
                && parts[0].split(separator: ".").allSatisfy { UInt8($0) != nil }
        }
        guard ok, let port = v.split(separator: ":").last.flatMap({ UInt16($0) }), port > 0 else {
            throw .config("\(setting): \"\(v)\" is not IP:port")
        }
        return v
    }

    private static func looksLikeHex(_ v: String) -> Bool {
        let t = v.trimmingWhitespace()
        return t.utf8.count == 64 && t.utf8.allSatisfy { Hex.decode([$0, $0]) != nil }
    }

    private static func loadKey<K>(
        _ setting: String, _ value: String, inline: Bool, _ parse: ([UInt8]) throws(TDNSError) -> K
    ) throws(TDNSError) -> K {
        var text: [UInt8]
        if inline {
            text = Array(value.utf8)
        } else {
            do {
                text = try POSIXFile.read(value, limit: CryptoLimits.maxKeyText)
            } catch {
                throw .config("\(setting): \(error.reason)")
            }
        }
        defer { zeroize(&text) }
        do {
            return try parse(text)
        } catch {
            throw .config("\(setting): \(error.reason)")
        }
    }

    private static func duration(_ v: String, setting: String) throws(TDNSError) -> Int64 {
        if let n = Int64(v), n >= 0 { return n }
        do {
            return try GoDuration.seconds(v)
        } catch {
            throw .config("\(setting): \"\(v)\" is not seconds or a duration like 30s")
        }
    }
}

/// Domain-name checks for names used in settings, file names and payloads.
enum DomainName {
    /// Presentation form, absolute: labels of letters, digits, `-` and `_`, 1–63 bytes,
    /// total ≤ 254 with the trailing dot. "." (the root) is accepted.
    static func isValidFQDN(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.last == UInt8(ascii: "."), bytes.count <= 254 else { return false }
        if bytes.count == 1 { return true }
        for label in bytes.dropLast().split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard (1...63).contains(label.count) else { return false }
            for c in label {
                let ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)
                    || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
                guard ok else { return false }
            }
        }
        return true
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let u = Array(utf8)
        var lo = 0
        var hi = u.count
        func space(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d }
        while lo < hi, space(u[lo]) { lo += 1 }
        while hi > lo, space(u[hi - 1]) { hi -= 1 }
        return String(decoding: u[lo..<hi], as: UTF8.self)
    }

    func lowercasedASCII() -> String {
        String(decoding: utf8.map { ($0 >= 0x41 && $0 <= 0x5a) ? $0 + 0x20 : $0 }, as: UTF8.self)
    }
}
