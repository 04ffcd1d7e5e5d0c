import TDNSCore
import TDNSCrypto
import TDNSTransport
import TDNSWire

/// The KRS settings given to `krs_init` as `key=value` strings, or in a file named by
/// `config=PATH` (one setting per line, `#` comments and blank lines ignored). Later
/// settings override earlier ones; argv entries override the file's, the file's override a
/// host's `key?=value` defaults, and those override what enrollment stored (`krs.conf`).
///
/// | setting | value | default |
/// |---|---|---|
/// | `node_id` | this node's FQDN, trailing dot | from enrollment |
/// | `control_zone` | the KDC's control zone, trailing dot | from enrollment |
/// | `state_dir` | directory for the replay record, components, audit log and enrollment (created 0700) | required |
/// | `key_store` | `bind`, `knot`, `nsd` or `none` | `bind` |
/// | `key_dir` | where the key files (BIND K-files) are written | required but for `none` |
/// | `rndc` | bind: absolute path of rndc, run as `rndc [-c rndc_conf] loadkeys ZONE` after a change; `none` | none (files only) |
/// | `rndc_conf` | bind: rndc's configuration file (server, port, key) | rndc's default |
/// | `keymgr`, `knotc` | knot: absolute paths of the tools | `/usr/sbin/keymgr`, `/usr/sbin/knotc` |
/// | `knot_conf` | knot: knot.conf, passed to both as `-c` | the tools' default |
/// | `knot_socket` | knot: knotc's control socket (`-s`) | knotc's default |
/// | `zone_dir` | nsd: directory of the unsigned zone files `<zone>zone` (`example.test.zone`) | required for `nsd` |
/// | `signed_dir` | nsd: where `<zone>zone.signed` is written (NSD's zonefile) | `zone_dir` |
/// | `signer` | nsd: absolute path of dnssec-signzone | `/usr/bin/dnssec-signzone` |
/// | `nsd_control` | nsd: absolute path of nsd-control, run as `nsd-control [-c nsd_conf] reload ZONE`; `none` | `/usr/sbin/nsd-control` |
/// | `nsd_conf` | nsd: nsd.conf for nsd-control | nsd-control's default |
/// | `command_timeout` | seconds one server tool may run before it is killed (1–300) | `30` |
/// | `hpke_private_key` | 64 hex characters, or the path of a tdns key file | from enrollment |
/// | `jose_private_key` | private JWK JSON, or the path of a file holding it | from enrollment |
/// | `sig0_private_key` | path of the node's Ed25519 SIG(0) key (PKCS#8 PEM) | from enrollment |
/// | `kdc_address` | the KDC's DNS service, `IP:port` | from enrollment |
/// | `notify_listen` | where NOTIFYs are received, `IP:port` (also the confirmations' source); `none` when the host hands them to `krs_handle_notify` (Knot) | none |
/// | `metrics_listen` | Prometheus metrics over HTTP (`GET /metrics`) on `IP:port`; `none` | none (off) |
/// | `kdc_signing_pubkey` | the KDC's public ES256 JWK, or a path | from enrollment (our KDC's packages) |
/// | `require_signature` | `yes`: only distributions whose Format 2 (JWT) manifest the KDC signed and that bind this node, the distribution ID, the time and the payload hash (PROTOCOL §9.3) are accepted; `no`: Format 1 (HMAC) manifests are accepted too, with a warning | `yes` when `kdc_signing_pubkey` is set, else `no` |
/// | `kdc_sig0_pubkey` | the KDC's SIG(0) KEY RR (presentation text), or the path of a file holding it | from enrollment (our KDC's packages) |
/// | `require_notify_signature` | `yes`: a NOTIFY without a valid SIG(0) by `kdc_sig0_pubkey` (signer = the control zone) is REFUSED | `yes` when `kdc_sig0_pubkey` is set, else `no` |
/// | `now` | fixed Unix time in seconds (tests) | the system clock |
/// | `max_skew` | tolerated clock skew, a duration (`60`, `30s`, `2m`: ``GoDuration``) | `60s` |
/// | `chunk_rrtype` | `65288` (current tdns) or `65015` (KDC builds of Jan–Mar 2026) | `65288` |
/// | `max_distribution_size` | cap on the bytes of one distribution | 67108864 (64 MiB) |
/// | `supported_crypto` | the backends this node enrolls with, comma-separated (`hpke`, `jose`): enrollment makes keys only for those the package offers too | `hpke,jose` |
/// | `preferred_crypto` | `hpke` or `jose` (one of `supported_crypto`): sent in the enrollment request as the backend the node would rather receive with (PROTOCOL §19); empty: none | none |
/// | `previous_hpke_private_key`, `previous_jose_private_key` | the keys from before a re-enrollment (as `hpke_private_key`/`jose_private_key`): they still open distributions made for them, until the first distribution made with the new keys is processed or `previous_keys_until` passes; written and removed by `tdns-krs enroll --reenroll` | none |
/// | `previous_keys_until` | Unix time after which the `previous_*` keys are no longer used | none |
///
/// Every value is parsed here, once — names to ``DNSName``, addresses to ``SocketAddress``,
/// durations to seconds, keys read from their files — and used as it is by the intake, the
/// fetcher, the receiver and the confirmations.
public struct KRSSettings: Sendable {
    /// The `key=value` arguments these settings were read from: enrollment reads them again,
    /// with the `krs.conf` it wrote.
    public let arguments: [String]
    /// Lowercase.
    public var nodeID: DNSName?
    /// Lowercase.
    public var controlZone: DNSName?
    public var stateDirectory: String
    public var keyStore: KeyStoreKind
    public var keyDirectory: String?
    public var hpkeKey: HPKEPrivateKey?
    public var joseKey: JOSEPrivateKey?
    public var kdcSigningKey: JOSEPublicKey?
    /// The KDC's SIG(0) key (`kdc_sig0_pubkey`): NOTIFYs are verified with it (PROTOCOL §19).
    public var kdcSIG0Key: KEYRecord?
    /// Whether a NOTIFY must carry a valid SIG(0) by ``kdcSIG0Key`` to be queued.
    public var requireNotifySignature: Bool
    public var sig0Key: DNSSECPrivateKey?
    public var kdcAddress: SocketAddress?
    /// nil with `notify_listen=none` (or unset): the host hands NOTIFYs to `krs_handle_notify`.
    public var notifyListen: SocketAddress?
    /// Where `GET /metrics` is served (`metrics_listen`); nil (the default) for nowhere.
    public var metricsListen: SocketAddress?
    public var requireSignature: Bool
    public var fixedNow: Int64?
    /// Seconds.
    public var maxSkew: Int64
    /// The CHUNK type of every query, confirmation and enrollment (65288, or 65015, PROTOCOL §21).
    public var chunkType: RRType
    public var maxDistributionSize: Int
    public var server: ServerTools
    /// `supported_crypto`, in the order given, without repetitions; never empty.
    public var supportedCrypto: [CryptoBackend]
    /// `preferred_crypto`; nil when the node states none.
    public var preferredCrypto: CryptoBackend?
    /// The keys from before a re-enrollment (`previous_*`), used until ``previousKeysUntil``.
    public var previousHPKEKey: HPKEPrivateKey?
    public var previousJOSEKey: JOSEPrivateKey?
    /// Unix seconds; nil: the previous keys (if any) have no end of their own.
    public var previousKeysUntil: Int64?

    public enum KeyStoreKind: String, Sendable { case bind, knot, nsd, none }

    /// How the key store tells the server (see the table above); paths are absolute.
    public struct ServerTools: Sendable {
        public var rndc: String?
        public var rndcConf: String?
        public var keymgr = "/usr/sbin/keymgr"
        public var knotc = "/usr/sbin/knotc"
        public var knotConf: String?
        public var knotSocket: String?
        public var zoneDirectory: String?
        public var signedDirectory: String?
        public var signer = "/usr/bin/dnssec-signzone"
        public var nsdControl: String? = "/usr/sbin/nsd-control"
        public var nsdConf: String?
        public var commandTimeout: Double = 30
    }

    public static let known: Set<String> = [
        "node_id", "control_zone", "state_dir", "key_store", "key_dir", "hpke_private_key",
        "jose_private_key", "kdc_signing_pubkey", "require_signature", "now", "max_skew",
        "chunk_rrtype", "max_distribution_size", "config", "sig0_private_key", "kdc_address", "notify_listen",
        "rndc", "rndc_conf", "keymgr", "knotc", "knot_conf", "knot_socket", "zone_dir", "signed_dir", "signer",
        "nsd_control", "nsd_conf", "command_timeout", "kdc_sig0_pubkey", "require_notify_signature",
        "supported_crypto", "preferred_crypto", "previous_hpke_private_key", "previous_jose_private_key",
        "previous_keys_until",
        "metrics_listen",
    ]
    /// Settings that describe the node's setup, not its identity: given at enrollment, they
    /// are kept in `krs.conf` with what the KDC sent.
    public static let setupSettings: [String] = [
        "key_store", "key_dir", "chunk_rrtype", "max_skew", "max_distribution_size", "require_signature",
        "require_notify_signature",
        "rndc", "rndc_conf", "keymgr", "knotc", "knot_conf", "knot_socket", "zone_dir", "signed_dir",
        "signer", "nsd_control", "nsd_conf", "command_timeout", "supported_crypto", "preferred_crypto",
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
        var hostDefaults: [(String, String)] = []
        for arg in arguments {
            // `key?=value`: a host's default (the BIND and Knot modules' key_store, rndc,
            // notify_listen) — below what the operator gives in argv or the config file,
            // above what enrollment stored.
            let (key, value, isDefault) = try Self.split(arg, origin: "argument", allowDefault: true)
            if isDefault { hostDefaults.append((key, value)) } else { fromArgs.append((key, value)) }
        }
        if let path = fromArgs.last(where: { $0.0 == "config" })?.1 {
            for (k, v) in try Self.readFile(path) { values[k] = v }
        }
        for (k, v) in fromArgs where k != "config" { values[k] = v }
        for (k, v) in hostDefaults where k != "config" && values[k] == nil { values[k] = v }
        // What enrollment stored, for everything not given explicitly.
        if let dir = values["state_dir"], !dir.isEmpty, POSIXFile.exists("\(dir)/\(Self.enrollmentFile)") {
            let path = "\(dir)/\(Self.enrollmentFile)"
            for (k, v) in try Self.readFile(path) where values[k] == nil { values[k] = v }
        }
        try self.init(values: values, arguments: arguments)
    }

    init(values given: [String: String], arguments: [String] = []) throws(TDNSError) {
        self.arguments = arguments
        // An empty value means "not set", so a config file's entry can be switched off from argv.
        let values = given.filter { !$0.value.isEmpty }
        func required(_ name: String) throws(TDNSError) -> String {
            guard let v = values[name], !v.isEmpty else { throw .config("\(name): required setting is missing") }
            return v
        }
        nodeID = try values["node_id"].map { (v) throws(TDNSError) in try Self.name(v, setting: "node_id") }
        controlZone = try values["control_zone"].map { (v) throws(TDNSError) in try Self.name(v, setting: "control_zone") }
        stateDirectory = try required("state_dir")

        switch values["key_store"] ?? "bind" {
        case "bind": keyStore = .bind
        case "knot": keyStore = .knot
        case "nsd": keyStore = .nsd
        case "none": keyStore = .none
        case let other: throw .config("key_store: \"\(other)\" is not bind, knot, nsd or none")
        }
        keyDirectory = values["key_dir"]
        if keyStore != .none && (keyDirectory ?? "").isEmpty {
            throw .config("key_dir: required with key_store=\(keyStore.rawValue)")
        }
        server = try Self.serverTools(values, keyStore: keyStore)

        hpkeKey = try values["hpke_private_key"].map { (v) throws(TDNSError) in try Self.hpkeKey("hpke_private_key", v) }
        joseKey = try values["jose_private_key"].map { (v) throws(TDNSError) in try Self.joseKey("jose_private_key", v) }
        previousHPKEKey = try values["previous_hpke_private_key"].map { (v) throws(TDNSError) in
            try Self.hpkeKey("previous_hpke_private_key", v)
        }
        previousJOSEKey = try values["previous_jose_private_key"].map { (v) throws(TDNSError) in
            try Self.joseKey("previous_jose_private_key", v)
        }
        if let v = values["previous_keys_until"] {
            guard let t = Int64(v), t >= 0 else { throw .config("previous_keys_until: \"\(v.prefix(32))\" is not Unix seconds") }
            previousKeysUntil = t
        }
        supportedCrypto = try Self.backendList(values["supported_crypto"] ?? "hpke,jose")
        preferredCrypto = try values["preferred_crypto"].map { (v) throws(TDNSError) -> CryptoBackend in
            guard let b = CryptoBackend(rawValue: v.lowercasedASCII()) else {
                throw .config("preferred_crypto: \"\(v.prefix(32))\" is not hpke or jose")
            }
            return b
        }
        if let p = preferredCrypto, !supportedCrypto.contains(p) {
            throw .config("preferred_crypto: \(p.rawValue) is not in supported_crypto (\(supportedCrypto.map(\.rawValue).joined(separator: ",")))")
        }
        sig0Key = try values["sig0_private_key"].map { (v) throws(TDNSError) -> DNSSECPrivateKey in
            try Self.loadKey("sig0_private_key", v, inline: false) { (b) throws(TDNSError) in try DNSSECPrivateKey(pkcs8PEM: b, algorithm: .ed25519) }
        }
        kdcAddress = try values["kdc_address"].map { (v) throws(TDNSError) in try Self.address(v, setting: "kdc_address") }
        notifyListen = try values["notify_listen"].flatMap { (v) throws(TDNSError) in
            v == "none" ? nil : try Self.address(v, setting: "notify_listen")
        }
        metricsListen = try values["metrics_listen"].flatMap { (v) throws(TDNSError) in
            v == "none" ? nil : try Self.address(v, setting: "metrics_listen")
        }
        kdcSigningKey = try values["kdc_signing_pubkey"].map { (v) throws(TDNSError) -> JOSEPublicKey in
            try Self.loadKey("kdc_signing_pubkey", v, inline: v.trimmingWhitespace().hasPrefix("{")) { (b) throws(TDNSError) in
                try JOSEPublicKey(jwk: Self.withoutCommentLines(b))
            }
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

        kdcSIG0Key = try values["kdc_sig0_pubkey"].map { (v) throws(TDNSError) -> KEYRecord in
            // A KEY RR has blanks between its fields; a path has none.
            let inline = v.utf8.contains { $0 == 0x20 || $0 == 0x09 }
            return try Self.loadKey("kdc_sig0_pubkey", v, inline: inline) { (b) throws(TDNSError) -> KEYRecord in
                try Self.sig0Key(b)
            }
        }
        switch values["require_notify_signature"] {
        case nil: requireNotifySignature = kdcSIG0Key != nil
        case "yes"?, "true"?, "1"?: requireNotifySignature = true
        case "no"?, "false"?, "0"?: requireNotifySignature = false
        case let other?: throw .config("require_notify_signature: \"\(other)\" is not yes or no")
        }
        if requireNotifySignature && kdcSIG0Key == nil {
            throw .config("require_notify_signature: yes needs kdc_sig0_pubkey to verify NOTIFYs with")
        }

        if let v = values["now"] {
            guard let t = Int64(v), t >= 0 else { throw .config("now: \"\(v)\" is not Unix seconds") }
            fixedNow = t
        }
        let skew = values["max_skew"] ?? "60s"
        do {
            maxSkew = try GoDuration.seconds(skew)
        } catch {
            throw .config("max_skew: \"\(skew)\" is not seconds or a duration like 30s")
        }

        switch values["chunk_rrtype"] ?? "65288" {
        case "65288", "CHUNK", "TYPE65288": chunkType = .chunk
        case "65015", "TYPE65015": chunkType = .chunkLegacy
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

    static func serverTools(_ values: [String: String], keyStore: KeyStoreKind) throws(TDNSError) -> ServerTools {
        var tools = ServerTools()
        func command(_ name: String, _ fallback: String?) throws(TDNSError) -> String? {
            guard let v = values[name] else { return fallback }
            if v == "none" { return nil }
            guard v.hasPrefix("/") else { throw .config("\(name): \"\(v.prefix(64))\" is not an absolute path (or none)") }
            return v
        }
        tools.rndc = try command("rndc", nil)
        tools.rndcConf = values["rndc_conf"]
        tools.keymgr = try command("keymgr", tools.keymgr) ?? tools.keymgr
        tools.knotc = try command("knotc", tools.knotc) ?? tools.knotc
        tools.knotConf = values["knot_conf"]
        tools.knotSocket = values["knot_socket"]
        tools.zoneDirectory = values["zone_dir"]
        tools.signedDirectory = values["signed_dir"] ?? values["zone_dir"]
        tools.signer = try command("signer", tools.signer) ?? tools.signer
        tools.nsdControl = try command("nsd_control", tools.nsdControl)
        tools.nsdConf = values["nsd_conf"]
        if let v = values["command_timeout"] {
            guard let t = Int(v), (1...300).contains(t) else { throw .config("command_timeout: \"\(v.prefix(32))\" is not 1–300 seconds") }
            tools.commandTimeout = Double(t)
        }
        if keyStore == .nsd && tools.zoneDirectory == nil {
            throw .config("zone_dir: required with key_store=nsd (the unsigned zone files)")
        }
        return tools
    }

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

    /// Where "now" comes from when the host gives no clock: `now=`, else the system clock.
    public var clock: WallClock { fixedNow.map(WallClock.fixed) ?? .system }

    /// The source address of confirmations: the notify address's IP, any port — the KDC
    /// identifies an unsigned confirmation by it (PROTOCOL §10.6).
    var confirmationSource: SocketAddress? { notifyListen?.with(port: 0) }

    private static func split(_ arg: String, origin: String) throws(TDNSError) -> (String, String) {
        let (key, value, _) = try split(arg, origin: origin, allowDefault: false)
        return (key, value)
    }

    /// `key=value`, or with `allowDefault` also `key?=value` (then `isDefault`).
    private static func split(_ arg: String, origin: String, allowDefault: Bool) throws(TDNSError) -> (String, String, Bool) {
        guard let eq = arg.firstIndex(of: "=") else {
            throw .config("\(origin): \"\(arg.prefix(40))\" is not key=value")
        }
        var key = String(arg[..<eq]).trimmingWhitespace()
        let isDefault = allowDefault && key.hasSuffix("?")
        if isDefault { key.removeLast() }
        let value = String(arg[arg.index(after: eq)...]).trimmingWhitespace()
        guard known.contains(key) else { throw .config("\(key): unknown setting") }
        return (key, value, isDefault)
    }

    /// A fully qualified domain name: trailing dot, LDH labels (plus `_`), 1–63 bytes each.
    static func fqdn(_ name: String, setting: String) throws(TDNSError) -> String {
        guard DomainName.isValidFQDN(name) else {
            throw .config("\(setting): \"\(name)\" is not a fully qualified domain name with a trailing dot")
        }
        return name.lowercasedASCII()
    }

    /// A name setting (``fqdn(_:setting:)``) as a DNS name.
    static func name(_ text: String, setting: String) throws(TDNSError) -> DNSName {
        let checked = try fqdn(text, setting: setting)
        do {
            return try DNSName(checked)
        } catch {
            throw .config("\(setting): \(error.reason)")
        }
    }

    /// `IPv4:port` or `[IPv6]:port`, a literal address and a port other than 0.
    private static func address(_ v: String, setting: String) throws(TDNSError) -> SocketAddress {
        guard let address = try? SocketAddress(v), address.port > 0 else {
            throw .config("\(setting): \"\(v)\" is not IP:port")
        }
        return address
    }

    /// The KDC's KEY RR: the first line that is not blank or a `;`/`#` comment, in
    /// presentation form (`kdc.example. 3600 IN KEY 256 3 15 <base64>`). Only the SIG(0)
    /// algorithms the verifier accepts (Ed25519, ECDSA P-256) are taken.
    static func sig0Key(_ text: [UInt8]) throws(TDNSError) -> KEYRecord {
        let line = String(decoding: text, as: UTF8.self).split(separator: "\n").map { String($0).trimmingWhitespace() }
            .first { !$0.isEmpty && !$0.hasPrefix(";") && !$0.hasPrefix("#") } ?? ""
        let record = try KEYRecord.parsePresentationLine(line).record
        guard SIG0Signatures.algorithms.contains(record.algorithm) else {
            throw .config("the KEY's algorithm \(record.algorithm) is not Ed25519 (15) or ECDSA P-256 (13)")
        }
        return record
    }

    /// The text without its `#` comment lines (the tdns key files' header, PROTOCOL §11.6).
    static func withoutCommentLines(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        for line in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if line.first(where: { $0 != 0x20 && $0 != 0x09 }) == UInt8(ascii: "#") { continue }
            out += line
            out.append(UInt8(ascii: "\n"))
        }
        return out
    }

    static func hpkeKey(_ setting: String, _ v: String) throws(TDNSError) -> HPKEPrivateKey {
        try loadKey(setting, v, inline: looksLikeHex(v)) { (b) throws(TDNSError) in try HPKEPrivateKey(text: b) }
    }

    static func joseKey(_ setting: String, _ v: String) throws(TDNSError) -> JOSEPrivateKey {
        // krs-cli writes the JWK pretty-printed below `#` comment lines (PROTOCOL §11.6).
        try loadKey(setting, v, inline: v.trimmingWhitespace().hasPrefix("{")) { (b) throws(TDNSError) in
            var jwk = withoutCommentLines(b)
            defer { zeroize(&jwk) }
            return try JOSEPrivateKey(jwk: jwk)
        }
    }

    /// `hpke,jose`: a comma-separated list of backends, at least one, each once.
    static func backendList(_ text: String) throws(TDNSError) -> [CryptoBackend] {
        var out: [CryptoBackend] = []
        for item in text.split(separator: ",") {
            let name = String(item).trimmingWhitespace().lowercasedASCII()
            guard let b = CryptoBackend(rawValue: name) else {
                throw .config("supported_crypto: \"\(name.prefix(32))\" is not hpke or jose")
            }
            if !out.contains(b) { out.append(b) }
        }
        guard !out.isEmpty else { throw .config("supported_crypto: names no backend (hpke, jose)") }
        return out
    }

    /// The previous keys (`previous_*`) while they are still to be used at `now`.
    public func previousKeys(at now: Int64) -> (hpke: HPKEPrivateKey?, jose: JOSEPrivateKey?) {
        if let until = previousKeysUntil, now >= until { return (nil, nil) }
        return (previousHPKEKey, previousJOSEKey)
    }

    /// Whether `previous_*` keys are configured (used or expired).
    public var hasPreviousKeys: Bool { previousHPKEKey != nil || previousJOSEKey != nil }

    /// The backends this node has a current key for, in the order hpke, jose.
    public var keyBackends: [CryptoBackend] {
        (hpkeKey != nil ? [CryptoBackend.hpke] : []) + (joseKey != nil ? [CryptoBackend.jose] : [])
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
}

/// An encryption backend of distributions and enrollment (PROTOCOL §6, §21): the names of the
/// manifest's `crypto`, of `supported_crypto`/`preferred_crypto` and of the status's `backends`.
public enum CryptoBackend: String, Sendable, CaseIterable {
    case hpke, jose
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
