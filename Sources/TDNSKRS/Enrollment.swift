import TDNSCore
import TDNSCrypto
import TDNSTransport
import TDNSWire

/// Enrollment, the KRS side (PROTOCOL §11): generate the node's keys, send the encrypted and
/// SIG(0)-signed UPDATE, check the KDC's answer, and persist keys and settings in the state
/// directory (0600), so that a later start needs only `state_dir=`.
enum Enrollment {
    struct Outcome: Sendable {
        var nodeID: String
        var settingsLines: [String]
    }

    static let timeout = 10.0

    /// - Parameter notifyAddress: `IP:port` where this node receives NOTIFYs; its IP also
    ///   identifies the node's confirmations (PROTOCOL §10.6).
    static func run(
        package: EnrollmentPackage, notifyAddress: String, stateDirectory: String, now: Int64,
        keepSettings: [String], log: @Sendable (KRSLogLevel, String) -> Void
    ) throws(TDNSError) -> Outcome {
        let controlZone = try DNSName(package.controlZone)
        let hpke: HPKEPrivateKey? = package.kdcHPKEKey != nil ? HPKEPrivateKey.generate() : nil
        let jose: JOSEPrivateKey? = package.kdcJOSEKey != nil ? try JOSEPrivateKey.generate() : nil
        let sig0 = try DNSSECPrivateKey.generate(algorithm: .ed25519)
        let keyRR = KEYRecord(algorithm: sig0.algorithm.rawValue, publicKey: sig0.dnskeyPublicKey)
            .presentationLine(owner: try DNSName(package.nodeID), ttl: 3600)

        // The request (PROTOCOL §11.3): a Go map, so keys sorted.
        var request: [(String, JSONValue)] = [("auth_token", .string(package.token))]
        if let hpke { request.append(("hpke_pubkey", .string(hpke.publicKey.hex))) }
        if let jose { request.append(("jose_pubkey", .string(jose.publicKey.jwkJSON()))) }
        request += [
            ("notify_address", .string(notifyAddress)),
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
            chunk: try TDNSMessages.enrollmentChunk(ciphertext: ciphertext))
        let signed = try SIG0Signatures.sign(update, with: sig0, signerName: controlZone, now: now)
        let server = try SocketAddress(package.kdcAddress)
        log(.info, "enrolling \(package.nodeID) with the KDC at \(server)")
        let answerBytes = try DNSClient.exchangeWithFallback(signed, server: server, timeout: timeout)
        let answer = try DNSMessage(wireEncoded: answerBytes)
        let response = try TDNSMessages.parseEnrollmentResponse(answer, to: update)

        // The confirmation: HPKE Auth from the KDC's key, or JWE; plaintext JSON only on errors.
        var confirmation: [UInt8]? = nil
        if let hpke, let kdcKey = package.kdcHPKEKey {
            confirmation = try? HPKECipher.openAuth(response.content, with: hpke, from: kdcKey)
        } else if let jose {
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

        // Persist: keys 0600, then the settings that point at them.
        let dir = stateDirectory
        var lines = [
            "# written by tdns-krs enrollment; settings given to krs_init override these",
            "node_id=\(package.nodeID)", "control_zone=\(package.controlZone)",
            "kdc_address=\(package.kdcAddress)", "notify_listen=\(notifyAddress)",
        ] + keepSettings
        if let hpke {
            var text = Array("# HPKE private key of \(package.nodeID)\n\(hpke.hex)\n".utf8)
            defer { zeroize(&text) }
            try POSIXFile.writeAtomically("\(dir)/node.hpke.privatekey", bytes: text, mode: 0o600)
            lines.append("hpke_private_key=\(dir)/node.hpke.privatekey")
        }
        if let jose {
            var text = Array(jose.jwkJSON().utf8)
            defer { zeroize(&text) }
            try POSIXFile.writeAtomically("\(dir)/node.jose.privatekey", bytes: text, mode: 0o600)
            lines.append("jose_private_key=\(dir)/node.jose.privatekey")
        }
        var pem = sig0.pkcs8PEM()
        defer { zeroize(&pem) }
        try POSIXFile.writeAtomically("\(dir)/node.sig0.privatekey", bytes: pem, mode: 0o600)
        lines.append("sig0_private_key=\(dir)/node.sig0.privatekey")
        if let kdcSigning = package.kdcSigningKey {
            try POSIXFile.writeAtomically("\(dir)/kdc.signing.pubkey", bytes: Array(kdcSigning.jwkJSON().utf8), mode: 0o644)
            lines.append("kdc_signing_pubkey=\(dir)/kdc.signing.pubkey")
        }
        try POSIXFile.writeAtomically("\(dir)/\(KRSSettings.enrollmentFile)", bytes: Array((lines.joined(separator: "\n") + "\n").utf8), mode: 0o600)
        log(.info, "enrolled as \(package.nodeID)")
        return Outcome(nodeID: package.nodeID, settingsLines: lines)
    }
}

/// RFC 3339 timestamps in UTC (`2026-11-29T12:00:00Z`), as Go's time.RFC3339 prints them.
enum RFC3339 {
    static func format(_ unix: Int64) -> String {
        let s = BINDTime.format(unix)  // YYYYMMDDHHMMSS
        let u = Array(s.utf8)
        func part(_ r: Range<Int>) -> String { String(decoding: u[r], as: UTF8.self) }
        return "\(part(0..<4))-\(part(4..<6))-\(part(6..<8))T\(part(8..<10)):\(part(10..<12)):\(part(12..<14))Z"
    }
}
