/// The key tag of a DNSKEY (or KEY) RR, computed over its RDATA
/// `flags(2) ‖ protocol(1) ‖ algorithm(1) ‖ publicKey` exactly as RFC 4034 Appendix B does.
///
/// For algorithm 1 (RSA/MD5) Appendix B.1 applies instead: the tag is the 16 bits just above
/// the lowest octet of the modulus, i.e. the third- and second-to-last octets of `publicKey`
/// (0 when the key is shorter than 3 octets).
///
/// This is the byte-level function; the DNSKEY record type of TDNSWire is built on the same rule.
public func dnssecKeyTag(flags: UInt16, protocol: UInt8, algorithm: UInt8, publicKey: [UInt8]) -> UInt16 {
    if algorithm == 1 {
        let n = publicKey.count
        guard n >= 3 else { return 0 }
        return UInt16(publicKey[n - 3]) << 8 | UInt16(publicKey[n - 2])
    }
    // Appendix B: sum the RDATA as big-endian 16-bit words (odd positions are low octets),
    // then fold the carries once. A 64-bit accumulator with wrapping adds cannot trap.
    var ac: UInt64 = UInt64(flags) &+ (UInt64(`protocol`) << 8) &+ UInt64(algorithm)
    for (i, byte) in publicKey.enumerated() {
        // The public key starts at RDATA offset 4 (even), so its even indices are high octets.
        ac &+= i & 1 == 0 ? UInt64(byte) << 8 : UInt64(byte)
    }
    ac &+= (ac >> 16) & 0xFFFF
    return UInt16(truncatingIfNeeded: ac & 0xFFFF)
}
