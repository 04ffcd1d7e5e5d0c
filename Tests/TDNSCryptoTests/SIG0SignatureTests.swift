import Testing
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSWire

@Suite("SIG(0) signatures")
struct SIG0SignatureTests {
    let controlZone = try! DNSName("kdc.example.")
    let now: Int64 = 1_800_000_000

    func confirmation() throws -> DNSMessage {
        try TDNSMessages.notify(id: 4711, distributionID: try DistributionID(validating: "6a2f0001"), controlZone: controlZone, chunkType: .chunk,
                                chunkOption: ChunkOption(contentType: .keyStatusReport, content: Array(#"{"successful_keys":[]}"#.utf8)))
    }

    func keyRecord(_ key: DNSSECPrivateKey) -> KEYRecord {
        KEYRecord(algorithm: key.algorithm.rawValue, publicKey: key.dnskeyPublicKey)
    }

    @Test("sign, then verify from the received bytes", arguments: [DNSSECAlgorithm.ed25519, .ecdsap256sha256])
    func roundTrip(algorithm: DNSSECAlgorithm) throws {
        let key = try DNSSECPrivateKey.generate(algorithm: algorithm)
        let wire = try SIG0Signatures.sign(try confirmation(), with: key, signerName: controlZone, now: now)
        let received = try DNSMessage(wireEncoded: wire)
        try SIG0Signatures.verify(received, key: keyRecord(key), now: now)
        // A second later, one minute later: still inside the window.
        try SIG0Signatures.verify(received, key: keyRecord(key), now: now + 60)
    }

    @Test("tampered, other key, outside the window, unsigned")
    func refusals() throws {
        let key = try DNSSECPrivateKey.generate(algorithm: .ed25519)
        let wire = try SIG0Signatures.sign(try confirmation(), with: key, signerName: controlZone, now: now)
        // Flip a byte of the question name: the signature covers the whole message.
        var tampered = wire
        tampered[15] ^= 0x01  // "2" becomes "3" in the distribution ID label
        expectCode(.authentication) { try SIG0Signatures.verify(try DNSMessage(wireEncoded: tampered), key: keyRecord(key), now: now) }
        let other = try DNSSECPrivateKey.generate(algorithm: .ed25519)
        expectCode(.authentication) { try SIG0Signatures.verify(try DNSMessage(wireEncoded: wire), key: keyRecord(other), now: now) }
        expectCode(.stale) { try SIG0Signatures.verify(try DNSMessage(wireEncoded: wire), key: keyRecord(key), now: now + 3600) }
        expectCode(.stale) { try SIG0Signatures.verify(try DNSMessage(wireEncoded: wire), key: keyRecord(key), now: now - 3600) }
        expectCode(.authentication) { try SIG0Signatures.verify(try DNSMessage(wireEncoded: try confirmation().serialize()), key: keyRecord(key), now: now) }
        let p384 = try DNSSECPrivateKey.generate(algorithm: .ecdsap384sha384)
        expectCode(.policy) { _ = try SIG0Signatures.sign(try confirmation(), with: p384, signerName: controlZone, now: now) }
    }
}
