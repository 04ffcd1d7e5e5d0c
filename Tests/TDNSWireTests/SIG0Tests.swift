import TDNSCore
import TDNSTestSupport
import Testing

@testable import TDNSWire

private let controlZone = try! DNSName("kdc.example.")

private func enrollmentUpdate() throws -> DNSMessage {
    try TDNSMessages.enrollmentUpdate(
        id: 0x4242, controlZone: controlZone,
        chunk: try TDNSMessages.enrollmentChunk(ciphertext: Array("ciphertext".utf8)), chunkType: .chunk)
}

private let sig = SIGRecord.sig0(
    algorithm: 15, keyTag: 0x1234, signerName: controlZone, inception: 0x6954_0000, expiration: 0x6954_012C)

/// RFC 2931 §3 signed data, written out field by field.
private func rfc2931Layout(_ message: [UInt8]) -> [UInt8] {
    var d: [UInt8] = []
    d += [0x00, 0x00]  // type covered 0
    d += [15]  // algorithm Ed25519
    d += [0]  // labels
    d += [0, 0, 0, 0]  // original TTL
    d += [0x69, 0x54, 0x01, 0x2C]  // expiration
    d += [0x69, 0x54, 0x00, 0x00]  // inception
    d += [0x12, 0x34]  // key tag
    d += [3] + Array("kdc".utf8) + [7] + Array("example".utf8) + [0]  // signer, uncompressed
    return d + message
}

private let fakeSignature = [UInt8](repeating: 0xAB, count: 64)

@Suite("SIG(0)")
struct SIG0Tests {
    @Test func dataToSignIsRFC2931Layout() throws {
        let unsigned = try enrollmentUpdate().serialize()
        #expect(try SIG0.dataToSign(unsignedMessage: unsigned, sig: sig) == rfc2931Layout(unsigned))
        #expect(try SIG0.dataToSign(message: try enrollmentUpdate(), sig: sig) == rfc2931Layout(unsigned))
        expectCode(.malformed) { _ = try SIG0.dataToSign(unsignedMessage: [1, 2, 3], sig: sig) }
    }

    @Test func appendAndExtract() throws {
        let unsigned = try enrollmentUpdate().serialize()
        var seen: [UInt8] = []
        let signed = try SIG0.sign(message: try enrollmentUpdate(), sig: sig) { data in
            seen = data
            return fakeSignature
        }
        #expect(seen == rfc2931Layout(unsigned))
        #expect(signed == (try SIG0.append(signature: fakeSignature, sig: sig, to: unsigned)))
        // The SIG RR by hand: owner root, type 24, class ANY, TTL 0, RDLENGTH, RDATA.
        let sigRData = Array(rfc2931Layout([]) + fakeSignature)
        let expectedRR: [UInt8] = [0, 0, 24, 0, 255, 0, 0, 0, 0, UInt8(sigRData.count >> 8), UInt8(sigRData.count & 0xFF)] + sigRData
        #expect(Array(signed.suffix(from: unsigned.count)) == expectedRR)
        #expect(Array(signed[0..<10]) == Array(unsigned[0..<10]))
        #expect(signed[10] == unsigned[10] && signed[11] == unsigned[11] + 1)

        let parsed = try DNSMessage(wireEncoded: signed)
        #expect(parsed.additional.count == 1 && parsed.edns?.udpPayloadSize == 1232)
        let x = try #require(try SIG0.extract(from: parsed))
        #expect(x.signature == fakeSignature)
        #expect(x.sig.signerName == controlZone && x.sig.keyTag == 0x1234 && x.sig.algorithm == 15)
        #expect(x.signedData == rfc2931Layout(unsigned))
        #expect(x.location.range.upperBound == signed.count)
        #expect(try TDNSMessages.parseEnrollmentUpdate(parsed, controlZone: controlZone).data == Array("ciphertext".utf8))
    }

    @Test func verificationUsesReceivedBytes() throws {
        // An unsigned message whose answer owner is compressed: re-serializing it would produce
        // different bytes, so the signed data must come from what was received.
        let qname = try DNSName("krs1.example.6a2fe001.kdc.example.")
        let q = qname.wireEncoded + [0xFF, 0x08, 0, 1]
        let rdata = try CHUNKRecord(sequence: 1, total: 1, data: [1]).rdata()
        let rr: [UInt8] = [0xC0, 12, 0xFF, 0x08, 0, 1, 0, 0, 1, 44, 0, UInt8(rdata.count)] + rdata
        let unsigned = rawMessage(qd: 1, an: 1, flags: 0x8400, q + rr)
        let signed = try SIG0.append(signature: fakeSignature, sig: sig, to: unsigned)
        let parsed = try DNSMessage(wireEncoded: signed)
        #expect(try parsed.serialize() != signed)
        let x = try #require(try SIG0.extract(from: parsed))
        #expect(x.signedData == rfc2931Layout(unsigned))
    }

    @Test func extractionRules() throws {
        let unsigned = try enrollmentUpdate().serialize()
        let signed = try SIG0.append(signature: fakeSignature, sig: sig, to: unsigned)

        // No SIG(0): nil. Not parsed from bytes: malformed.
        #expect(try SIG0.extract(from: try DNSMessage(wireEncoded: unsigned)) == nil)
        expectCode(.malformed, "built, not received") { _ = try SIG0.extract(from: try enrollmentUpdate()) }

        // Two SIG(0)s.
        let twice = try SIG0.append(signature: fakeSignature, sig: sig, to: signed)
        expectCode(.malformed, "two SIG(0)") { _ = try SIG0.extract(from: try DNSMessage(wireEncoded: twice)) }

        // SIG(0) not last: add an A record after it.
        // (serialize() keeps trailing SIGs last, so the misplaced order is built by hand.)
        let aRR: [UInt8] = [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4]
        var notLast = signed + aRR
        notLast[11] += 1
        expectCode(.malformed, "not last") { _ = try SIG0.extract(from: try DNSMessage(wireEncoded: notLast)) }

        // Class IN / TTL 300, as PROTOCOL §12 describes the Go header before miekg rewrites it.
        var classIN = signed
        let rrStart = unsigned.count
        classIN[rrStart + 3] = 0
        classIN[rrStart + 4] = 1
        expectCode(.malformed, "class IN") { _ = try SIG0.extract(from: try DNSMessage(wireEncoded: classIN)) }
        #expect(try SIG0.extract(from: try DNSMessage(wireEncoded: classIN), requireRecommendedHeader: false) != nil)
        var ttl300 = signed
        ttl300[rrStart + 7] = 1
        ttl300[rrStart + 8] = 44
        expectCode(.malformed, "TTL 300") { _ = try SIG0.extract(from: try DNSMessage(wireEncoded: ttl300)) }

        // A SIG with another type covered is not a SIG(0).
        var covered = signed
        covered[rrStart + 12] = 1
        #expect(try SIG0.extract(from: try DNSMessage(wireEncoded: covered)) == nil)

        // Signer name compressed.
        let fixed = Array(rfc2931Layout([]).prefix(18))
        let compressedRData = fixed + [0xC0, 12] + fakeSignature
        let compressedRR: [UInt8] = [0, 0, 24, 0, 255, 0, 0, 0, 0, 0, UInt8(compressedRData.count)] + compressedRData
        var compressed = unsigned + compressedRR
        compressed[11] += 1
        expectCode(.malformed, "compressed signer") { _ = try SIG0.extract(from: try DNSMessage(wireEncoded: compressed)) }

        // ARCOUNT already at its maximum.
        var full = unsigned
        full[10] = 0xFF
        full[11] = 0xFF
        expectCode(.tooBig) { _ = try SIG0.append(signature: [], sig: sig, to: full) }
    }
}
