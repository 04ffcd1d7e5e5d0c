import TDNSCore
import TDNSCrypto
import TDNSWire

/// One key to install, fully validated: the private key parses for its algorithm, derives the
/// DNSKEY's public key, and the DNSKEY's key tag is the entry's key_id (PROTOCOL §10.2).
struct KeyToInstall: Sendable {
    var zone: String
    var keyID: String
    var keyTag: UInt16
    var algorithm: UInt8
    var flags: UInt16
    var isKSK: Bool
    var ttl: UInt32
    var dnskey: DNSKEYRecord
    var privateKey: DNSSECPrivateKey
    /// `metadata.old_key_id`: a key of the zone to retire as well (PROTOCOL §10.3).
    var oldKeyTag: UInt16? = nil
}

/// What a distribution asks for, in payload order (PROTOCOL §10).
enum Operation: Sendable {
    case install(KeyToInstall)
    case delete(zone: String, keyID: String, keyTag: UInt16)
    /// `index` is the entry's position, reported as `op-<index>` (§10.6).
    case ping(index: Int)
}

enum Content {
    static let keyOperationTypes: Set<String> = ["key_operations", "mgmt_operations", "mixed_operations"]
    static let maxEntries = 4096
    static let maxPEM = 16 * 1024
    /// The DNSSEC algorithms a roll_key may carry: those the KDC generates (PROTOCOL §10.2):
    /// RSASHA256, RSASHA512, ECDSAP256SHA256, ECDSAP384SHA384, Ed25519.
    static let supportedAlgorithms: Set<DNSSECAlgorithm> = [.rsasha256, .rsasha512, .ecdsap256sha256, .ecdsap384sha384, .ed25519]

    /// Parses and validates every entry of a key/mgmt/mixed payload. Any invalid entry refuses
    /// the whole distribution, so that nothing is installed from a payload that is partly wrong.
    static func operations(_ plaintext: [UInt8]) throws(TDNSError) -> [Operation] {
        let json = try JSONValue.parse(plaintext, maxDepth: 8, maxSize: plaintext.count)
        guard let entries = json.arrayValue else { throw .malformed("payload is not a JSON array") }
        guard entries.count <= maxEntries else { throw .tooBig("payload has more than \(maxEntries) operations") }
        var ops: [Operation] = []
        for (index, entry) in entries.enumerated() {
            guard case .object = entry else { throw .malformed("operation \(index) is not an object") }
            guard let op = entry["operation"]?.stringValue else { throw .malformed("operation \(index) has no operation name") }
            switch op {
            case "roll_key": ops.append(.install(try rollKey(entry, index: index)))
            case "delete_key":
                let zone = try zoneName(entry, index: index)
                let (keyID, tag) = try keyID(entry, index: index)
                ops.append(.delete(zone: zone, keyID: keyID, keyTag: tag))
            case "ping":
                guard let nonce = entry["metadata"]?["nonce"]?.stringValue, !nonce.isEmpty else {
                    throw .malformed("ping \(index) has no nonce")
                }
                ops.append(.ping(index: index))
            default:
                throw .malformed("operation \(index): unknown operation \"\(op.prefix(32))\"")
            }
        }
        return ops
    }

    /// The component list of a node_operations payload (§10.5).
    static func components(_ plaintext: [UInt8]) throws(TDNSError) -> [String] {
        let json = try JSONValue.parse(plaintext, maxDepth: 4, maxSize: plaintext.count)
        guard let entries = json.arrayValue else { throw .malformed("node_operations payload is not a JSON array") }
        guard entries.count <= maxEntries else { throw .tooBig("too many components") }
        var ids: [String] = []
        for (i, e) in entries.enumerated() {
            guard let id = e["component_id"]?.stringValue, !id.isEmpty, id.utf8.count <= 255 else {
                throw .malformed("component \(i) has no component_id")
            }
            ids.append(id)
        }
        return ids
    }

    private static func rollKey(_ e: JSONValue, index: Int) throws(TDNSError) -> KeyToInstall {
        let zone = try zoneName(e, index: index)
        let (keyID, tag) = try keyID(e, index: index)
        guard let algNumber = e["algorithm"]?.int64Value, let algorithm = UInt8(exactly: algNumber) else {
            throw .malformed("roll_key \(index): algorithm is not a number 0–255")
        }
        guard supportedAlgorithms.contains(DNSSECAlgorithm(rawValue: algorithm)) else {
            throw .policy("roll_key \(index): DNSSEC algorithm \(algorithm) is not supported")
        }
        guard let flagsNumber = e["flags"]?.int64Value, let flags = UInt16(exactly: flagsNumber), flags == 256 || flags == 257 else {
            throw .malformed("roll_key \(index): flags must be 256 or 257")
        }
        let keyType = e["key_type"]?.stringValue ?? ""
        guard ["KSK", "ZSK", "CSK"].contains(keyType) else { throw .malformed("roll_key \(index): key_type must be KSK, ZSK or CSK") }
        guard (keyType == "ZSK") == (flags == 256) else {
            throw .malformed("roll_key \(index): key_type \(keyType) does not match flags \(flags)")
        }
        guard let dnskeyText = e["public_key"]?.stringValue else { throw .malformed("roll_key \(index): no public_key") }
        let line = try DNSKEYRecord.parsePresentationLine(dnskeyText)
        guard line.owner.description.lowercasedASCII() == zone else {
            throw .malformed("roll_key \(index): DNSKEY owner \(line.owner) is not zone_name \(zone)")
        }
        let dnskey = line.record
        guard dnskey.flags == flags, dnskey.algorithm == algorithm, dnskey.protocol == 3 else {
            throw .malformed("roll_key \(index): DNSKEY flags/protocol/algorithm differ from the entry")
        }
        guard dnskey.keyTag == tag else {
            throw .keyMismatch("roll_key \(index): key_id \(keyID) is not the DNSKEY's key tag \(dnskey.keyTag)")
        }
        guard let privateB64 = e["private_key"]?.stringValue else { throw .malformed("roll_key \(index): no private_key") }
        guard privateB64.utf8.count <= maxPEM * 2 else { throw .tooBig("roll_key \(index): private_key too large") }
        var pem: [UInt8]
        do {
            pem = try Base64.decode(privateB64)
        } catch {
            throw .malformed("roll_key \(index): private_key is not base64")
        }
        defer { zeroize(&pem) }
        let privateKey = try DNSSECPrivateKey(pkcs8PEM: pem, algorithm: DNSSECAlgorithm(rawValue: algorithm))
        guard privateKey.dnskeyPublicKey == dnskey.publicKey else {
            throw .keyMismatch("roll_key \(index): the private key does not belong to the DNSKEY (key tag \(tag))")
        }
        // old_key_id: a string, possibly empty or null (from the rollover API only).
        var oldKeyTag: UInt16? = nil
        if let old = e["metadata"]?["old_key_id"]?.stringValue, !old.isEmpty {
            oldKeyTag = try keyTag(old, index: index)
        }
        return KeyToInstall(
            zone: zone, keyID: keyID, keyTag: tag, algorithm: algorithm, flags: flags,
            isKSK: flags == 257, ttl: line.ttl, dnskey: dnskey, privateKey: privateKey, oldKeyTag: oldKeyTag)
    }

    private static func zoneName(_ e: JSONValue, index: Int) throws(TDNSError) -> String {
        guard let zone = e["zone_name"]?.stringValue else { throw .malformed("operation \(index): no zone_name") }
        guard DomainName.isValidFQDN(zone), zone != "." else {
            throw .malformed("operation \(index): zone_name \"\(zone.prefix(64))\" is not a fully qualified name with a trailing dot")
        }
        return zone.lowercasedASCII()
    }

    /// key_id is the key tag in decimal; like the Go KRS, hex is tried when decimal fails.
    private static func keyID(_ e: JSONValue, index: Int) throws(TDNSError) -> (String, UInt16) {
        guard let text = e["key_id"]?.stringValue else { throw .malformed("operation \(index): key_id is not a key tag") }
        return (text, try keyTag(text, index: index))
    }

    private static func keyTag(_ text: String, index: Int) throws(TDNSError) -> UInt16 {
        guard (1...5).contains(text.utf8.count) else { throw .malformed("operation \(index): key_id is not a key tag") }
        if let tag = UInt16(text, radix: 10) { return tag }
        if text.utf8.count <= 4, let tag = UInt16(text, radix: 16) { return tag }
        throw .malformed("operation \(index): key_id \"\(text)\" is not a key tag")
    }
}
