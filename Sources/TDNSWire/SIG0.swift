import TDNSCore

/// SIG(0) transaction signatures, the wire half (RFC 2931 §3; PROTOCOL §12). The signing and
/// verifying themselves live in TDNSCrypto; this builds the exact bytes they work on.
///
/// Signed data (RFC 2931 §3): the SIG RDATA without the signature field, followed by the
/// message as it was **before** the SIG RR was added (so ARCOUNT does not count the SIG).
///
/// The SIG RR itself: owner `.`, class ANY, TTL 0, type covered 0, labels 0, original TTL 0.
/// That is what RFC 2931 §3 recommends and what goes on the wire from tdns: `SignMsg` fills in
/// owner = node ID, class IN, TTL 300 (the values PROTOCOL §12 lists), but then calls miekg/dns
/// `SIG.Sign`, which overwrites the header with `.`/ANY/0 and zeroes type covered, labels and
/// original TTL before packing and signing (johanix/dns `sig0.go`). The signer name is the
/// control zone (PROTOCOL §12), the key tag that of the KRS's KEY.
public enum SIG0 {
    /// Owner name of the SIG(0) RR (RFC 2931 §3: "SHOULD be root").
    public static let owner = DNSName.root
    /// Class of the SIG(0) RR (RFC 2931 §3: "SHOULD be ANY").
    public static let rrClass = RRClass.any
    /// TTL of the SIG(0) RR (RFC 2931 §3: "SHOULD be zero").
    public static let ttl: UInt32 = 0

    // MARK: signing

    /// The data to sign: `sig` RDATA without its signature ‖ `unsignedMessage`.
    ///
    /// - Parameter unsignedMessage: the complete wire message without the SIG RR.
    public static func dataToSign(unsignedMessage: [UInt8], sig: SIGRecord) throws(TDNSError) -> [UInt8] {
        guard unsignedMessage.count >= DNSMessage.headerSize else {
            throw .malformed("SIG(0): message of \(unsignedMessage.count) bytes has no header")
        }
        guard unsignedMessage.count <= DNSMessage.maxSize else { throw .tooBig("SIG(0): message exceeds 65535 bytes") }
        return sig.rdataWithoutSignature() + unsignedMessage
    }

    /// The data to sign for `message` serialized (see ``dataToSign(unsignedMessage:sig:)``).
    /// Sign and append over the **same** serialization: use ``sign(message:sig:signer:)`` or
    /// serialize once and call the byte-level functions.
    public static func dataToSign(message: DNSMessage, sig: SIGRecord) throws(TDNSError) -> [UInt8] {
        try dataToSign(unsignedMessage: message.serialize(), sig: sig)
    }

    /// The SIG(0) resource record for `sig` carrying `signature` (owner `.`, class ANY, TTL 0).
    public static func record(sig: SIGRecord, signature: [UInt8]) -> ResourceRecord {
        var s = sig
        s.signature = signature
        return ResourceRecord(name: owner, type: .sig, rrClass: rrClass, ttl: ttl, rdata: s.rdata())
    }

    /// Appends the SIG(0) RR to `unsignedMessage` and increments ARCOUNT: the message to send.
    ///
    /// - Throws: `.malformed` without a header; `.tooBig` when ARCOUNT is already 65535 or the
    ///   result exceeds 65535 bytes.
    public static func append(signature: [UInt8], sig: SIGRecord, to unsignedMessage: [UInt8]) throws(TDNSError) -> [UInt8] {
        guard unsignedMessage.count >= DNSMessage.headerSize else {
            throw .malformed("SIG(0): message of \(unsignedMessage.count) bytes has no header")
        }
        let arcount = UInt16(unsignedMessage[10]) << 8 | UInt16(unsignedMessage[11])
        guard arcount < UInt16.max else { throw .tooBig("SIG(0): ARCOUNT is already 65535") }
        var w = WireWriter(capacity: unsignedMessage.count + 64 + signature.count)
        w.writeBytes(unsignedMessage)
        try w.patchUInt16(at: 10, arcount + 1)
        try record(sig: sig, signature: signature).serialize(into: &w)
        guard w.count <= DNSMessage.maxSize else { throw .tooBig("SIG(0): signed message of \(w.count) bytes exceeds 65535") }
        return w.bytes
    }

    /// Serializes `message` once, asks `signer` to sign the RFC 2931 data, and returns the signed
    /// wire message. `sig` should come from ``SIGRecord/sig0(algorithm:keyTag:signerName:inception:expiration:)``.
    public static func sign(
        message: DNSMessage, sig: SIGRecord, signer: ([UInt8]) throws(TDNSError) -> [UInt8]
    ) throws(TDNSError) -> [UInt8] {
        let unsigned = try message.serialize()
        let signature = try signer(dataToSign(unsignedMessage: unsigned, sig: sig))
        return try append(signature: signature, sig: sig, to: unsigned)
    }

    // MARK: verification

    /// A SIG(0) found in a received message, with the data its signature must cover.
    public struct Extracted: Sendable {
        /// The SIG RDATA as received, signature included.
        public let sig: SIGRecord
        /// Where the SIG RR sat in the received bytes.
        public let location: RecordLocation
        /// RFC 2931 §3 signed data rebuilt from the **received** bytes: the received SIG RDATA up
        /// to the signature ‖ the received header with ARCOUNT − 1 ‖ the received bytes from
        /// offset 12 up to the SIG RR.
        public let signedData: [UInt8]
        /// The signature to check.
        public var signature: [UInt8] { sig.signature }
    }

    /// Finds the SIG(0) of a parsed message.
    ///
    /// Returns nil when the message has no SIG with type covered 0. Otherwise the SIG(0) must
    /// be the only one in the message and the last record of the additional section (RFC 2931
    /// §3; after the OPT record), and — with `requireRecommendedHeader`, the default — have
    /// class ANY and TTL 0 as RFC 2931 §3 recommends and every miekg/dns signer (tdns) writes.
    /// The owner name is not checked (RFC 2931: "meaningless"). Type covered 0 is what marks a
    /// SIG(0); a SIG with another type covered is left alone.
    ///
    /// - Throws: `.malformed` when the message was not parsed from bytes, or the SIG(0) is
    ///   misplaced, duplicated or undecodable.
    public static func extract(from message: DNSMessage, requireRecommendedHeader: Bool = true) throws(TDNSError) -> Extracted? {
        guard let wire = message.received else {
            throw .malformed("SIG(0): the message was not parsed from received bytes")
        }
        let bytes = wire.bytes
        func isSIG0(_ l: RecordLocation) -> Bool {
            l.type == .sig && l.rdataRange.count >= 2
                && bytes[l.rdataRange.lowerBound] == 0 && bytes[l.rdataRange.lowerBound + 1] == 0
        }
        let all = (wire.answers + wire.authority + wire.additional).filter(isSIG0)
        guard let location = all.first else { return nil }
        guard all.count == 1 else { throw .malformed("SIG(0): \(all.count) SIG(0) records in one message") }
        guard let last = wire.additional.last, last == location else {
            throw .malformed("SIG(0): not the last record of the additional section")
        }
        guard location.range.upperBound == bytes.count else {
            throw .malformed("SIG(0): bytes follow the SIG(0) record")
        }
        if requireRecommendedHeader {
            guard location.rrClass == .any else { throw .malformed("SIG(0): class \(location.rrClass), not ANY") }
            guard location.ttl == 0 else { throw .malformed("SIG(0): TTL \(location.ttl), not 0") }
        }
        let sig = try SIGRecord(rdata: Array(bytes[location.rdataRange]))
        let unsignedRDataEnd = location.rdataRange.lowerBound + SIGRecord.fixedLength + sig.signerName.wireLength
        guard unsignedRDataEnd <= location.rdataRange.upperBound else {
            throw .malformed("SIG(0): RDATA shorter than its signer name")
        }
        let arcount = UInt16(bytes[10]) << 8 | UInt16(bytes[11])
        guard arcount >= 1 else { throw .malformed("SIG(0): ARCOUNT is 0") }
        var signed: [UInt8] = []
        signed.reserveCapacity(location.range.lowerBound + 64 + sig.signerName.wireLength)
        signed.append(contentsOf: bytes[location.rdataRange.lowerBound..<unsignedRDataEnd])
        signed.append(contentsOf: bytes[0..<10])
        signed.append(UInt8(truncatingIfNeeded: (arcount - 1) >> 8))
        signed.append(UInt8(truncatingIfNeeded: arcount - 1))
        signed.append(contentsOf: bytes[DNSMessage.headerSize..<location.range.lowerBound])
        return Extracted(sig: sig, location: location, signedData: signed)
    }
}
