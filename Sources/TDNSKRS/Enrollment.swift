#if canImport(Glibc)
import Glibc
#endif
import TDNSCore
import TDNSCrypto
import TDNSTransport
import TDNSWire

/// Enrollment, the KRS side (PROTOCOL §11, §19, §21): generate the node's keys, build the
/// encrypted and SIG(0)-signed UPDATE (``prepare(package:notifyAddress:chunkType:now:)``),
/// send it, check the KDC's answer and persist keys and settings in the state directory
/// (``complete(_:answer:stateDirectory:keepSettings:log:)``), so that a later start needs only
/// `state_dir=`.
enum Enrollment {
    struct Outcome: Sendable {
        var nodeID: String
        var settingsLines: [String]
    }

    /// What this node can read, announced in the request (contract §1): `jws-es256` — it
    /// verifies the KDC's ES256 JWT manifests; `sig0` — it signs its confirmations and verifies
    /// the KDC's SIG(0) on NOTIFYs. A Go KDC ignores the member.
    static let capabilities = ["jws-es256", "sig0"]

    static let timeout = 10.0

    /// The UPDATE, built and signed, with the keys it announces: everything before the wire.
    struct Request: Sendable {
        var package: EnrollmentPackage
        var notifyAddress: String
        /// The KDC address resolved once: `kdc_enrollment_address` may name a host (§21).
        var server: SocketAddress
        /// The unsigned message, to match the answer against.
        var update: DNSMessage
        /// What goes on the wire: `update` with its SIG(0).
        var wire: [UInt8]
        var hpke: HPKEPrivateKey?
        var jose: JOSEPrivateKey?
        var sig0: DNSSECPrivateKey
    }

    /// Enrolls: ``prepare(package:notifyAddress:chunkType:now:log:)``, one exchange with the
    /// KDC (UDP, TCP when truncated), ``complete(_:answer:stateDirectory:keepSettings:log:)``.
    /// - Parameter notifyAddress: `IP:port` where this node receives NOTIFYs; its IP also
    ///   identifies the node's confirmations (PROTOCOL §10.6).
    static func run(
        package: EnrollmentPackage, notifyAddress: String, chunkType: RRType, stateDirectory: String, now: Int64,
        keepSettings: [String], supported: [CryptoBackend] = CryptoBackend.allCases, preferred: CryptoBackend? = nil,
        reenrollment: Reenrollment? = nil, log: @Sendable (KRSLogLevel, String) -> Void
    ) throws(TDNSError) -> Outcome {
        let request = try prepare(package: package, notifyAddress: notifyAddress, chunkType: chunkType, now: now,
                                  supported: supported, preferred: preferred, log: log)
        // A re-enrollment writes the new keys beside the old ones before it asks (contract
        // item 5); whatever goes wrong before the KDC's acknowledgement removes them again, and
        // the node goes on with its old keys.
        var written: [String] = []
        if let reenrollment {
            for (level, note) in try PrivateDirectory.prepare(stateDirectory, setting: "state_dir") { log(level, note) }
            written = try writeKeys(request, directory: stateDirectory, suffix: reenrollment.suffix).files
        }
        do throws(TDNSError) {
            log(.info, "\(reenrollment == nil ? "enrolling" : "re-enrolling") \(package.nodeID) with the KDC at \(request.server)")
            let answerBytes = try DNSClient.exchangeWithFallback(request.wire, server: request.server, timeout: timeout)
            let answer = try DNSMessage(wireEncoded: answerBytes)
            return try complete(request, answer: answer, stateDirectory: stateDirectory, keepSettings: keepSettings,
                                reenrollment: reenrollment, log: log)
        } catch {
            for file in written { try? POSIXFile.remove(file) }
            if reenrollment != nil { log(.warning, "re-enrollment failed; the node keeps its current keys: \(error.reason)") }
            throw error
        }
    }

    /// What a re-enrollment adds to an enrollment: where the new keys go and the old keys,
    /// kept as `previous_*` until the first distribution made with the new ones is processed
    /// (or ``keepPrevious`` seconds).
    struct Reenrollment: Sendable {
        /// Inserted into the new key files' names (`node.hpke.<suffix>.privatekey`), so that
        /// they never replace a file the running node reads.
        var suffix: String
        /// `previous_hpke_private_key=…`, `previous_jose_private_key=…` (the current key
        /// settings of krs.conf, renamed).
        var previousLines: [String]
        var now: Int64
        static let keepPrevious: Int64 = 7 * 86400
    }

    /// Which backends the node makes keys for: those it supports (`supported_crypto`) that
    /// the package offers, in the package's order.
    static func backends(offered: [CryptoBackend], supported: [CryptoBackend]) throws(TDNSError) -> [CryptoBackend] {
        let chosen = offered.filter { supported.contains($0) }
        guard !chosen.isEmpty else {
            let list = { (b: [CryptoBackend]) in b.isEmpty ? "none" : b.map(\.rawValue).joined(separator: ",") }
            throw .config("supported_crypto: this node supports \(list(supported)), the enrollment package offers \(list(offered)): no backend in common")
        }
        return chosen
    }

    /// Generates the node's keys and builds the signed UPDATE (PROTOCOL §11.3–§11.4): the
    /// CHUNK RR has type `chunkType` — the node's `chunk_rrtype`, which must be the KDC's
    /// (a Go KDC built with 65015 answers FORMERR to 65288, §21).
    static func prepare(
        package: EnrollmentPackage, notifyAddress: String, chunkType: RRType, now: Int64,
        supported: [CryptoBackend] = CryptoBackend.allCases, preferred: CryptoBackend? = nil,
        log: @Sendable (KRSLogLevel, String) -> Void = { _, _ in }
    ) throws(TDNSError) -> Request {
        let controlZone = try DNSName(package.controlZone)
        let backends = try backends(offered: package.offeredCrypto, supported: supported)
        let server = try KDCAddress.resolve(package.kdcAddress, log: log)
        // Keys only for the backends both sides have (contract item 1).
        let hpke: HPKEPrivateKey? = backends.contains(.hpke) ? HPKEPrivateKey.generate() : nil
        let jose: JOSEPrivateKey? = backends.contains(.jose) ? try JOSEPrivateKey.generate() : nil
        var preference: CryptoBackend? = nil
        if let preferred {
            if backends.contains(preferred) {
                preference = preferred
            } else {
                log(.warning, "preferred_crypto=\(preferred.rawValue), but the enrollment makes no \(preferred.rawValue) key (the package offers \(package.offeredCrypto.map(\.rawValue).joined(separator: ","))): no preference sent")
            }
        }
        let sig0 = try DNSSECPrivateKey.generate(algorithm: .ed25519)
        let keyRR = KEYRecord(algorithm: sig0.algorithm.rawValue, publicKey: sig0.dnskeyPublicKey)
            .presentationLine(owner: try DNSName(package.nodeID), ttl: 3600)

        // The request (PROTOCOL §11.3, contract §1): a Go map, so keys sorted.
        var request: [(String, JSONValue)] = [
            ("auth_token", .string(package.token)),
            ("capabilities", .array(capabilities.map { .string($0) })),
        ]
        if let hpke { request.append(("hpke_pubkey", .string(hpke.publicKey.hex))) }
        if let jose { request.append(("jose_pubkey", .string(jose.publicKey.jwkJSON()))) }
        request.append(("notify_address", .string(notifyAddress)))
        // PROTOCOL §19 (contract item 1): the backend the node would rather receive with. A
        // Go KDC unmarshals the request into a struct and drops members it does not know.
        if let preference { request.append(("preferred_crypto", .string(preference.rawValue))) }
        request += [
            ("sig0_pubkey", .string(keyRR)),
            ("timestamp", .string(RFC3339.format(now))),
        ]
        let plaintext = JSONValue.object(request).serialized()
        // HPKE Base to the KDC when it has an HPKE key, else JOSE (§11.4).
        let ciphertext: [UInt8]
        if let kdcKey = package.kdcHPKEKey {
            ciphertext = try HPKECipher.seal(plaintext, to: kdcKey)
        } else if let kdcKey = package.kdcJOSEKey {
            ciphertext = try JWE.encrypt(plaintext, to: kdcKey)
        } else {
            throw .malformed("enrollment package has no KDC key")
        }
        let update = try TDNSMessages.enrollmentUpdate(
            id: UInt16.random(in: 1...UInt16.max), controlZone: controlZone,
            chunk: try TDNSMessages.enrollmentChunk(ciphertext: ciphertext), chunkType: chunkType)
        let signed = try SIG0Signatures.sign(update, with: sig0, signerName: controlZone, now: now)
        return Request(package: package, notifyAddress: notifyAddress, server: server, update: update, wire: signed,
                       hpke: hpke, jose: jose, sig0: sig0)
    }

    /// Writes the node's new private keys (0600): `node.<backend>[.<suffix>].privatekey`.
    /// Returns the files and the settings that name them.
    static func writeKeys(_ request: Request, directory dir: String, suffix: String?) throws(TDNSError) -> (files: [String], settings: [String]) {
        let tail = suffix.map { ".\($0)" } ?? ""
        var files: [String] = []
        var lines: [String] = []
        if let hpke = request.hpke {
            var text = Array("# HPKE private key of \(request.package.nodeID)\n\(hpke.hex)\n".utf8)
            defer { zeroize(&text) }
            let path = "\(dir)/node.hpke\(tail).privatekey"
            try POSIXFile.writeAtomically(path, bytes: text, mode: 0o600)
            files.append(path)
            lines.append("hpke_private_key=\(path)")
        }
        if let jose = request.jose {
            var text = Array(jose.jwkJSON().utf8)
            defer { zeroize(&text) }
            let path = "\(dir)/node.jose\(tail).privatekey"
            try POSIXFile.writeAtomically(path, bytes: text, mode: 0o600)
            files.append(path)
            lines.append("jose_private_key=\(path)")
        }
        var pem = request.sig0.pkcs8PEM()
        defer { zeroize(&pem) }
        let path = "\(dir)/node.sig0\(tail).privatekey"
        try POSIXFile.writeAtomically(path, bytes: pem, mode: 0o600)
        files.append(path)
        lines.append("sig0_private_key=\(path)")
        return (files, lines)
    }

    /// Checks the KDC's answer (PROTOCOL §11.5) and persists keys (0600) and settings.
    static func complete(
        _ request: Request, answer: DNSMessage, stateDirectory: String, keepSettings: [String],
        reenrollment: Reenrollment? = nil, log: @Sendable (KRSLogLevel, String) -> Void
    ) throws(TDNSError) -> Outcome {
        let package = request.package
        let response = try TDNSMessages.parseEnrollmentResponse(answer, to: request.update)

        // The confirmation: HPKE Auth from the KDC's key, or JWE; plaintext JSON only on errors.
        var confirmation: [UInt8]? = nil
        if let hpke = request.hpke, let kdcKey = package.kdcHPKEKey {
            confirmation = try? HPKECipher.openAuth(response.content, with: hpke, from: kdcKey)
        } else if let jose = request.jose {
            confirmation = try? JWE.decrypt(response.content, with: jose)
        }
        guard response.rcode == .noError else {
            let text = confirmation ?? response.content
            let reason = (try? JSONValue.parse(text, maxDepth: 4, maxSize: 65536))?["error_message"]?.stringValue ?? "no reason given"
            throw .dns("the KDC refused the enrollment (\(response.rcode)): \(reason.prefix(200))")
        }
        guard let confirmation else { throw .authentication("the KDC's enrollment confirmation does not decrypt/authenticate") }
        let json = try JSONValue.parse(confirmation, maxDepth: 4, maxSize: 65536)
        guard json["status"]?.stringValue == "success" else {
            throw .dns("the KDC answered status \(json["status"]?.stringValue ?? "?"): \(json["error_message"]?.stringValue ?? "")")
        }
        guard json["node_id"]?.stringValue?.lowercasedASCII() == package.nodeID else {
            throw .wrongNode("the KDC's confirmation names another node")
        }

        // Persist: keys 0600, then the settings that point at them. The directory is the
        // node's own (0700, contract §4).
        let dir = stateDirectory
        for (level, note) in try PrivateDirectory.prepare(dir, setting: "state_dir") { log(level, note) }
        var lines = [
            "# written by tdns-krs enrollment; settings given to krs_init override these",
            "node_id=\(package.nodeID)", "control_zone=\(package.controlZone)",
            // The address resolved at enrollment, once (kdc_enrollment_address may be host:port).
            "kdc_address=\(request.server)", "notify_listen=\(request.notifyAddress)",
        ] + keepSettings
        lines += try writeKeys(request, directory: dir, suffix: reenrollment?.suffix).settings
        if let reenrollment, !reenrollment.previousLines.isEmpty {
            // The old keys still open distributions made for them (contract item 5).
            lines += reenrollment.previousLines
            lines.append("previous_keys_until=\(reenrollment.now + Reenrollment.keepPrevious)")
        }
        if let kdcSigning = package.kdcSigningKey {
            try POSIXFile.writeAtomically("\(dir)/kdc.signing.pubkey", bytes: Array(kdcSigning.jwkJSON().utf8), mode: 0o644)
            lines.append("kdc_signing_pubkey=\(dir)/kdc.signing.pubkey")
        }
        if let kdcSIG0 = package.kdcSIG0Key {
            // NOTIFYs are then verified with it (require_notify_signature defaults to yes).
            try POSIXFile.writeAtomically("\(dir)/kdc.sig0.pubkey", bytes: Array((kdcSIG0 + "\n").utf8), mode: 0o644)
            lines.append("kdc_sig0_pubkey=\(dir)/kdc.sig0.pubkey")
        }
        try POSIXFile.writeAtomically("\(dir)/\(KRSSettings.enrollmentFile)", bytes: Array((lines.joined(separator: "\n") + "\n").utf8), mode: 0o600)
        log(.info, "enrolled as \(package.nodeID)")
        return Outcome(nodeID: package.nodeID, settingsLines: lines)
    }
}

/// The KDC's DNS address from an enrollment package (PROTOCOL §11.2, §21): `IP:port`, or
/// `host:port`, which the Go KRS resolves. Resolved here once, at enrollment — an operator's
/// action, never inside a running server — and stored as an address in krs.conf.
enum KDCAddress {
    /// A literal address as it is; a name through the system resolver, taking the first IPv4
    /// address, else the first address — as Go's resolver picks for "udp".
    static func resolve(_ text: String, log: @Sendable (KRSLogLevel, String) -> Void) throws(TDNSError) -> SocketAddress {
        if let literal = try? SocketAddress(text) { return literal }
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0 else {
            throw .malformed("kdc_enrollment_address \"\(text.prefix(80))\" is not host:port")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, host.utf8.count <= 253, DomainName.isValidFQDN(host.hasSuffix(".") ? host : host + ".") else {
            throw .malformed("kdc_enrollment_address \"\(text.prefix(80))\": \"\(host.prefix(64))\" is not a host name")
        }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>? = nil
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0, let list else {
            throw .network("kdc_enrollment_address: cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var v4: SocketAddress? = nil
        var first: SocketAddress? = nil
        var next: UnsafeMutablePointer<addrinfo>? = list
        while let entry = next {
            if let address = socketAddress(entry.pointee, port: port) {
                if first == nil { first = address }
                if v4 == nil, address.family == .ipv4 { v4 = address }
            }
            next = entry.pointee.ai_next
        }
        guard let chosen = v4 ?? first else { throw .network("kdc_enrollment_address: \(host) has no IPv4 or IPv6 address") }
        log(.info, "kdc_enrollment_address \(text) resolved to \(chosen) (stored as kdc_address)")
        return chosen
    }

    private static func socketAddress(_ info: addrinfo, port: UInt16) -> SocketAddress? {
        guard let sa = info.ai_addr else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let ok: Bool
        switch info.ai_family {
        case AF_INET:
            guard Int(info.ai_addrlen) >= MemoryLayout<sockaddr_in>.size else { return nil }
            var addr = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in.self).sin_addr
            ok = inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count - 1)) != nil
        case AF_INET6:
            guard Int(info.ai_addrlen) >= MemoryLayout<sockaddr_in6>.size else { return nil }
            var addr = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in6.self).sin6_addr
            ok = inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count - 1)) != nil
        default:
            return nil
        }
        guard ok else { return nil }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return try? SocketAddress(host: text, port: port)
    }
}
