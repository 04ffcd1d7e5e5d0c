import TDNSCore
import TDNSCrypto
import TDNSWire

/// What the key-file writer consumes (PROTOCOL §10.2): the PKCS#8 private key (PEM, as the KDC
/// sends it, and DER when the input starts with a SEQUENCE), which becomes a `DNSSECPrivateKey`
/// and then a BIND `.private` file; the `.private` file itself (its parser,
/// `parseBINDPrivateKey`, reads what the writer writes); and the DNSKEY (and KEY) presentation
/// line.
///
/// Round trips: key → PKCS#8 PEM/DER → key gives the same key and the same bytes; the BIND
/// file's secret fields, put back into a PKCS#8 document, give the same key again (so the file
/// really holds the key that was parsed) and the `.private` parser reads the file back to the
/// same key and the same bytes; DNSKEY line → record → line → record is stable and
/// both key-tag implementations (TDNSWire, TDNSCrypto) agree.
enum KeyFileHarness {
    static let algorithms: [DNSSECAlgorithm] = [.rsasha256, .rsasha512, .ecdsap256sha256, .ecdsap384sha384, .ed25519]
    static let keyErrors: [TDNSError.Code] = [.malformed, .tooBig, .policy]
    static let owner: DNSName = (try? DNSName("example.com.")) ?? .root

    static func run(_ data: [UInt8]) throws(InvariantViolation) {
        try privateKeys("PEM", data) { (alg) throws(TDNSError) in try DNSSECPrivateKey(pkcs8PEM: data, algorithm: alg) }
        if data.first == 0x30 {
            try privateKeys("DER", data) { (alg) throws(TDNSError) in try DNSSECPrivateKey(pkcs8DER: data, algorithm: alg) }
        }
        try bindFile(data)
        let text = String(decoding: data, as: UTF8.self)
        try dnskeyLine(text)
        try keyLine(text)
    }

    /// The reading half of the key-file writer: a BIND `.private` file.
    private static func bindFile(_ data: [UInt8]) throws(InvariantViolation) {
        let parsed: (key: DNSSECPrivateKey, metadata: BINDPrivateKeyMetadata)
        do {
            parsed = try DNSSECPrivateKey.parseBINDPrivateKey(data)
        } catch {
            try expectRejection(error, keyErrors, "DNSSECPrivateKey.parseBINDPrivateKey")
            return
        }
        try invariant(DNSSECPrivateKey.bindPrivateKeyFormats.contains(parsed.metadata.format), "BIND format \(parsed.metadata.format) accepted")
        try checkKey(parsed.key, seed: data)
    }

    // MARK: private keys

    private static func privateKeys(
        _ what: String, _ data: [UInt8], _ parse: (DNSSECAlgorithm) throws(TDNSError) -> DNSSECPrivateKey
    ) throws(InvariantViolation) {
        var accepted: [DNSSECPrivateKey] = []
        for algorithm in algorithms {
            do {
                accepted.append(try parse(algorithm))
            } catch {
                try expectRejection(error, keyErrors, "DNSSECPrivateKey(\(what), algorithm \(algorithm.rawValue))")
            }
        }
        // One key has one type: both RSA algorithms, or exactly one of the others.
        let numbers = accepted.map(\.algorithm.rawValue)
        try invariant(numbers.isEmpty || numbers == [8, 10] || (numbers.count == 1 && numbers[0] > 10),
                      "\(what) key accepted for algorithms \(numbers)")
        for key in accepted {
            try invariant(key.dnskeyPublicKey == accepted[0].dnskeyPublicKey, "same key, different DNSKEY public key per algorithm")
            try checkKey(key, seed: data)
        }
    }

    private static func checkKey(_ key: DNSSECPrivateKey, seed: [UInt8]) throws(InvariantViolation) {
        let algorithm = key.algorithm
        FuzzDebug.note("private key parsed for algorithm \(algorithm)")
        let isRSA = algorithm == .rsasha256 || algorithm == .rsasha512

        // PKCS#8 round trips.
        var pem = key.pkcs8PEM()
        defer { zeroize(&pem) }
        var der = key.pkcs8DER()
        defer { zeroize(&der) }
        var expectedPEM = goPEM(der)
        defer { zeroize(&expectedPEM) }
        try invariant(pem == expectedPEM, "pkcs8PEM() is not pkcs8DER() in Go's pem.Encode layout")
        let fromPEM = try mustSucceed("parse of pkcs8PEM()") { () throws(TDNSError) in try DNSSECPrivateKey(pkcs8PEM: pem, algorithm: algorithm) }
        let fromDER = try mustSucceed("parse of pkcs8DER()") { () throws(TDNSError) in try DNSSECPrivateKey(pkcs8DER: der, algorithm: algorithm) }
        for (name, other) in [("PEM", fromPEM), ("DER", fromDER)] {
            try invariant(other.dnskeyPublicKey == key.dnskeyPublicKey, "\(name) round trip changed the public key")
            var otherDER = other.pkcs8DER()
            defer { zeroize(&otherDER) }
            try invariant(otherDER == der, "\(name) round trip changed the PKCS#8 encoding")
        }

        // The BIND file: deterministic, well-formed, and holding this very key.
        let created = seed.count >= 8 ? seed.prefix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) } : 1_767_225_600
        var file = key.bindPrivateKeyFile(created: created, publish: 1_767_225_600, activate: nil)
        defer { zeroize(&file) }
        var again = fromPEM.bindPrivateKeyFile(created: created, publish: 1_767_225_600, activate: nil)
        defer { zeroize(&again) }
        try invariant(file == again, "bindPrivateKeyFile differs for the same key")
        try checkBINDFile(file, key: key, created: created, isRSA: isRSA)
        // …and reads back (DNSSECPrivateKey.parseBINDPrivateKey) as the same key and the same file.
        let reread = try mustSucceed("parseBINDPrivateKey of bindPrivateKeyFile") { () throws(TDNSError) in
            try DNSSECPrivateKey.parseBINDPrivateKey(file)
        }
        try invariant(reread.key.algorithm == algorithm && reread.key.dnskeyPublicKey == key.dnskeyPublicKey, "BIND file reads back as another key")
        var rereadDER = reread.key.pkcs8DER()
        defer { zeroize(&rereadDER) }
        try invariant(rereadDER == der, "BIND file round trip changed the PKCS#8 encoding")
        try invariant(reread.metadata.format == "v1.3" && reread.metadata.fields.map(\.name) == ["Created", "Publish"],
                      "BIND file metadata reads back as \(reread.metadata.format) \(reread.metadata.fields.map(\.name))")
        var rewritten = reread.key.bindPrivateKeyFile(created: created, publish: 1_767_225_600, activate: nil)
        defer { zeroize(&rewritten) }
        try invariant(rewritten == file, "BIND file is not a fixed point of read/write")

        // DNSKEY: key file line round trip, key tags agree.
        let dnskey = DNSKEYRecord(flags: 257, algorithm: algorithm.rawValue, publicKey: key.dnskeyPublicKey)
        let line = dnskey.keyFileLine(owner: owner, ttl: 3600)
        let parsed = try mustSucceed("DNSKEY line of a parsed key") { () throws(TDNSError) in try DNSKEYRecord.parsePresentationLine(line) }
        try invariant(parsed.record == dnskey && parsed.owner.isIdentical(to: owner) && parsed.ttl == 3600, "DNSKEY key-file line does not round-trip")
        try invariant(dnskey.keyTag == key.keyTag(flags: 257), "TDNSWire and TDNSCrypto key tags differ")

        // Signing: the public key verifies what the private key signs (not for RSA: refused).
        let message = Array("tdns-fuzz".utf8) + seed.prefix(32)
        if isRSA {
            do {
                _ = try key.sign(message)
                throw InvariantViolation(message: "RSA signing was not refused")
            } catch {
                try rejection(error, [.policy], "RSA sign")
            }
        } else {
            let publicKey = try mustSucceed("publicKey()") { () throws(TDNSError) in try key.publicKey() }
            let signature = try mustSucceed("sign") { () throws(TDNSError) in try key.sign(message) }
            try invariant(publicKey.verify(signature: signature, data: message), "signature does not verify")
            try invariant(!publicKey.verify(signature: signature, data: message + [0]), "signature verifies for other data")
            try invariant(publicKey.keyTag(flags: 257) == dnskey.keyTag, "public key's key tag differs")
        }
    }

    /// `-----BEGIN PRIVATE KEY-----`, base64 in 64-character lines, END line, LF endings.
    private static func goPEM(_ der: [UInt8]) -> [UInt8] {
        var b64 = Base64.encodeBytes(der)
        defer { zeroize(&b64) }
        var out = Array("-----BEGIN PRIVATE KEY-----\n".utf8)
        var i = 0
        while i < b64.count {
            out += b64[i..<min(i + 64, b64.count)]
            out.append(0x0A)
            i += 64
        }
        out += Array("-----END PRIVATE KEY-----\n".utf8)
        return out
    }

    private static func checkBINDFile(_ file: [UInt8], key: DNSSECPrivateKey, created: Int64, isRSA: Bool) throws(InvariantViolation) {
        try invariant(file.last == 0x0A, "BIND file does not end with a newline")
        var fields: [(String, [UInt8])] = []
        for line in file.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false) {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), line.index(after: colon) < line.endIndex,
                line[line.index(after: colon)] == 0x20
            else { throw InvariantViolation(message: "BIND file line without \"Name: \"") }
            fields.append((String(decoding: line[..<colon], as: UTF8.self), Array(line[(colon + 2)...])))
        }
        let names = fields.map(\.0)
        let secretNames = isRSA
            ? ["Modulus", "PublicExponent", "PrivateExponent", "Prime1", "Prime2", "Exponent1", "Exponent2", "Coefficient"]
            : ["PrivateKey"]
        try invariant(names == ["Private-key-format", "Algorithm"] + secretNames + ["Created", "Publish"], "BIND file fields are \(names)")
        try invariant(fields[0].1 == Array("v1.3".utf8), "BIND file format is not v1.3")
        let algorithm = key.algorithm
        try invariant(fields[1].1 == Array("\(algorithm.rawValue) (\(algorithm))".utf8), "BIND Algorithm line")
        for (name, value) in fields[(fields.count - 2)...] {
            try invariant(value.count == 14 && value.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }, "BIND \(name) is not YYYYMMDDHHMMSS")
        }
        if created <= 0 { try invariant(fields[fields.count - 2].1 == Array("19700101000000".utf8), "negative Created not clamped") }
        if created >= Int64(UInt32.max) { try invariant(fields[fields.count - 2].1 == Array("21060207062815".utf8), "Created not clamped to 32 bits") }

        var secrets: [[UInt8]] = []
        defer { for i in secrets.indices { zeroize(&secrets[i]) } }
        for (name, value) in fields[2..<(2 + secretNames.count)] {
            try base64Canonical(value, what: "BIND \(name)")
            guard let bytes = try? Base64.decode(value) else { throw InvariantViolation(message: "BIND \(name) is not base64") }
            // BIND's RSA fields are unsigned big-endian integers without leading zero octets.
            try invariant(!isRSA || (bytes.first ?? 0) != 0, "BIND \(name) is empty or has a leading zero octet")
            secrets.append(bytes)
        }

        // Rebuild a PKCS#8 document from the file's fields: it must be the same key.
        var der: [UInt8]
        switch algorithm {
        case .ecdsap256sha256, .ecdsap384sha384:
            let size = algorithm == .ecdsap256sha256 ? 32 : 48
            try invariant(secrets[0].count == size, "BIND PrivateKey is \(secrets[0].count) octets, not \(size)")
            let curve: [UInt8] = algorithm == .ecdsap256sha256
                ? [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] : [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]
            let ecPrivateKey = tlv(0x30, [0x02, 0x01, 0x01] + tlv(0x04, secrets[0]))
            der = tlv(0x30, [0x02, 0x01, 0x00] + tlv(0x30, [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01] + curve) + tlv(0x04, ecPrivateKey))
        case .ed25519:
            try invariant(secrets[0].count == 32, "BIND Ed25519 PrivateKey is not 32 octets")
            der = tlv(0x30, [0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70] + tlv(0x04, tlv(0x04, secrets[0])))
        default:
            // The public half must be the DNSKEY's (RFC 3110: exponent length, exponent, modulus).
            let pub = key.dnskeyPublicKey
            let (expStart, expLength) = pub.first == 0 ? (3, Int(pub[1]) << 8 | Int(pub[2])) : (1, Int(pub.first ?? 0))
            try invariant(pub.count > expStart + expLength, "RFC 3110 public key too short")
            try invariant(Array(pub[expStart..<(expStart + expLength)]) == secrets[1], "BIND PublicExponent is not the DNSKEY's")
            try invariant(Array(pub[(expStart + expLength)...]) == secrets[0], "BIND Modulus is not the DNSKEY's")
            let rsa = tlv(0x30, [0x02, 0x01, 0x00] + secrets.flatMap(derInteger))
            der = tlv(0x30, [0x02, 0x01, 0x00]
                + [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00] + tlv(0x04, rsa))
        }
        defer { zeroize(&der) }
        let rebuilt = try mustSucceed("PKCS#8 rebuilt from the BIND file") { () throws(TDNSError) in
            try DNSSECPrivateKey(pkcs8DER: der, algorithm: algorithm)
        }
        try invariant(rebuilt.dnskeyPublicKey == key.dnskeyPublicKey, "BIND file holds another key than the one parsed")
    }

    private static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [tag]
        let n = content.count
        if n < 0x80 {
            out.append(UInt8(n))
        } else if n < 0x100 {
            out += [0x81, UInt8(n)]
        } else {
            out += [0x82, UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
        }
        return out + content
    }

    private static func derInteger(_ magnitude: [UInt8]) -> [UInt8] {
        var body = Array(magnitude.drop(while: { $0 == 0 }))
        if body.first.map({ $0 & 0x80 != 0 }) ?? true { body.insert(0, at: 0) }
        return tlv(0x02, body)
    }

    // MARK: presentation lines

    private static let lineErrors: [TDNSError.Code] = [.malformed, .tooBig]

    private static func dnskeyLine(_ text: String) throws(InvariantViolation) {
        let line: RecordLine<DNSKEYRecord>
        do {
            line = try DNSKEYRecord.parsePresentationLine(text)
        } catch {
            try expectRejection(error, lineErrors, "DNSKEYRecord.parsePresentationLine")
            return
        }
        let record = line.record
        FuzzDebug.note("DNSKEY line parsed: \(record.presentation.prefix(40))")
        let printed = record.presentationLine(owner: line.owner, ttl: line.ttl, rrClass: line.rrClass)
        let back = try mustSucceed("DNSKEY line \"\(printed.prefix(120))\"") { () throws(TDNSError) in
            try DNSKEYRecord.parsePresentationLine(printed)
        }
        try invariant(back.record == record && back.owner.isIdentical(to: line.owner) && back.ttl == line.ttl && back.rrClass == line.rrClass,
                      "DNSKEY line does not round-trip: \(printed.prefix(160))")
        let fromRData = try mustSucceed("DNSKEYRecord(rdata:)") { () throws(TDNSError) in try DNSKEYRecord(rdata: record.rdata()) }
        try invariant(fromRData == record, "DNSKEY RDATA does not round-trip")
        try invariant(record.keyTag == dnssecKeyTag(flags: record.flags, protocol: record.protocol, algorithm: record.algorithm, publicKey: record.publicKey),
                      "TDNSWire and TDNSCrypto key tags differ")
        do {
            let publicKey = try DNSSECPublicKey(algorithm: DNSSECAlgorithm(record.algorithm), dnskeyPublicKey: record.publicKey)
            if record.protocol == 3 {
                try invariant(publicKey.keyTag(flags: record.flags) == record.keyTag, "DNSSECPublicKey key tag differs")
            }
            _ = publicKey.verify(signature: [UInt8](repeating: 1, count: 64), data: [1, 2, 3])
        } catch {
            try rejection(error, [.malformed, .policy], "DNSSECPublicKey(algorithm:dnskeyPublicKey:)")
        }
    }

    private static func keyLine(_ text: String) throws(InvariantViolation) {
        let line: RecordLine<KEYRecord>
        do {
            line = try KEYRecord.parsePresentationLine(text)
        } catch {
            try expectRejection(error, lineErrors, "KEYRecord.parsePresentationLine")
            return
        }
        let record = line.record
        let printed = record.presentationLine(owner: line.owner, ttl: line.ttl, rrClass: line.rrClass)
        let back = try mustSucceed("KEY line \"\(printed.prefix(120))\"") { () throws(TDNSError) in
            try KEYRecord.parsePresentationLine(printed)
        }
        try invariant(back.record == record && back.owner.isIdentical(to: line.owner) && back.ttl == line.ttl && back.rrClass == line.rrClass,
                      "KEY line does not round-trip: \(printed.prefix(160))")
        let fromRData = try mustSucceed("KEYRecord(rdata:)") { () throws(TDNSError) in try KEYRecord(rdata: record.rdata()) }
        try invariant(fromRData == record, "KEY RDATA does not round-trip")
        try invariant(record.keyTag == dnssecKeyTag(flags: record.flags, protocol: record.protocol, algorithm: record.algorithm, publicKey: record.publicKey),
                      "TDNSWire and TDNSCrypto key tags differ")
    }
}
