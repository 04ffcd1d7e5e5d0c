import TDNSCore
import TDNSTestSupport
import Testing

@testable import TDNSWire

@Suite("EDNS and the CHUNK option")
struct ChunkOptionTests {
    @Test func layout() throws {
        let option = ChunkOption(format: 1, hmac: [0xAA, 0xBB], data: [2, 0x7B, 0x7D])
        let bytes = try option.optionData()
        #expect(bytes == [1, 0, 2, 0xAA, 0xBB, 0, 3, 2, 0x7B, 0x7D])
        #expect(try ChunkOption(optionData: bytes) == option)
        #expect(option.contentType == .enrollmentConfirmation)
        #expect(option.content == [0x7B, 0x7D])
        let report = ChunkOption(contentType: .keyStatusReport, content: Array("{}".utf8))
        #expect(try report.optionData() == [1, 0, 0, 0, 3, 1, 0x7B, 0x7D])
        #expect(try report.contentParts().type == .keyStatusReport)
        #expect(ChunkOption.ContentType.componentStatusReport.rawValue == 3)
        #expect(try ChunkOption(optionData: [1, 0, 0, 0, 0]).data.isEmpty)
        expectCode(.malformed, "no content type") { _ = try ChunkOption(optionData: [1, 0, 0, 0, 0]).contentParts() }
    }

    @Test func strictness() throws {
        expectCode(.malformed, "4 bytes") { _ = try ChunkOption(optionData: [1, 0, 0, 0]) }
        expectCode(.malformed, "empty") { _ = try ChunkOption(optionData: []) }
        // HMAC of 65 bytes is refused (Go receiver limit 64); 64 is fine.
        let h64 = [1, 0, 64] + [UInt8](repeating: 9, count: 64) + [0, 0]
        #expect(try ChunkOption(optionData: h64).hmac.count == 64)
        let h65 = [1, 0, 65] + [UInt8](repeating: 9, count: 65) + [0, 0]
        expectCode(.malformed, "HMAC 65") { _ = try ChunkOption(optionData: h65) }
        expectCode(.tooBig, "HMAC 65 on build") { _ = try ChunkOption(hmac: [UInt8](repeating: 0, count: 65), data: []).optionData() }
        expectCode(.malformed, "HMAC length past end") { _ = try ChunkOption(optionData: [1, 0, 8, 1, 2, 0, 0]) }
        expectCode(.malformed, "data length past end") { _ = try ChunkOption(optionData: [1, 0, 0, 0, 4, 1, 2]) }
        expectCode(.malformed, "trailing byte") { _ = try ChunkOption(optionData: [1, 0, 0, 0, 1, 1, 9]) }
        expectCode(.tooBig, "option > 65535") { _ = try ChunkOption(data: [UInt8](repeating: 0, count: 65531)).optionData() }
    }

    @Test func ednsOptions() throws {
        let first = try ChunkOption(contentType: .keyStatusReport, content: [1]).ednsOption()
        var edns = EDNS(udpPayloadSize: 4096, dnssecOK: true, options: [EDNSOption(code: .nsid, data: []), first])
        #expect(try edns.chunkOption()?.content == [1])
        edns.setOption(try ChunkOption(contentType: .componentStatusReport, content: [2]).ednsOption())
        #expect(edns.options.count == 2)
        #expect(try edns.chunkOption()?.contentType == .componentStatusReport)
        edns.options.append(first)
        expectCode(.malformed, "two CHUNK options") { _ = try edns.chunkOption() }
        edns.setOption(first)
        #expect(edns.options.map(\.code) == [.nsid, .chunk])
        #expect(try EDNS().chunkOption() == nil)
        // Through a whole message.
        let m = DNSMessage(id: 3, edns: edns)
        let p = try DNSMessage(wireEncoded: try m.serialize())
        #expect(p.edns == edns)
        let bad = EDNS(options: [EDNSOption(code: .chunk, data: [1, 0])])
        expectCode(.malformed, "bad CHUNK option data") { _ = try bad.chunkOption() }
    }
}

@Suite("CHUNK RDATA")
struct CHUNKRecordTests {
    @Test func strictRData() throws {
        let ok = try CHUNKRecord(format: 1, hmac: [1, 2], sequence: 3, total: 4, data: [5, 6, 7]).rdata()
        #expect(ok == [1, 0, 2, 1, 2, 0, 3, 0, 4, 0, 3, 5, 6, 7])
        #expect(try CHUNKRecord(rdata: ok).data == [5, 6, 7])
        for n in 0..<ok.count {
            expectCode(.malformed, "prefix \(n)") { _ = try CHUNKRecord(rdata: Array(ok.prefix(n))) }
        }
        expectCode(.malformed, "trailing byte") { _ = try CHUNKRecord(rdata: ok + [0]) }
        expectCode(.malformed, "HMAC length > remaining") { _ = try CHUNKRecord(rdata: [1, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0]) }
        expectCode(.malformed, "HMAC eats the fixed fields") { _ = try CHUNKRecord(rdata: [1, 0, 4, 0, 0, 0, 0, 0, 0, 0]) }
        #expect(try CHUNKRecord(rdata: [7, 0, 0, 0, 0, 0, 0, 0, 0]).format == 7)
        expectCode(.tooBig, "data 65535 + header") { _ = try CHUNKRecord(sequence: 1, total: 1, data: [UInt8](repeating: 0, count: 65535)).rdata() }
        #expect(try CHUNKRecord(sequence: 1, total: 1, data: [UInt8](repeating: 0, count: 65526)).rdata().count == 65535)
    }

    @Test func presentationForms() throws {
        // Data chunk: base64 of Data; HMAC "".
        let data = CHUNKRecord(sequence: 2, total: 3, data: Array("AAAA".utf8))
        #expect(data.presentation == "2 3 JSON \"\" QUFBQQ==")
        #expect(try CHUNKRecord(presentation: "2 3 JSON \"\" QUFB QQ==") == data)
        // Manifest JSON verbatim, even with blanks inside.
        let json = CHUNKRecord(hmac: [0xAB], sequence: 0, total: 0, data: Array("{\"a\": [1, 2]}".utf8))
        #expect(json.presentation == "0 0 JSON ab {\"a\": [1, 2]}")
        #expect(try CHUNKRecord(presentation: json.presentation) == json)
        #expect(try CHUNKRecord(presentation: "0 0 JSON AB {\"a\": [1, 2]}") == json)
        // Unknown format, JWT.
        #expect(CHUNKRecord(format: 9, sequence: 1, total: 1, data: [0]).presentation == "1 1 FORMAT9 \"\" AA==")
        #expect(try CHUNKRecord(presentation: "1 1 FORMAT9 \"\" AA==").format == 9)
        #expect(try CHUNKRecord(presentation: "0 0 JWT \"\" a.b.c").data == Array("a.b.c".utf8))
        // Manifests Go would print lossily come out in generic form and read back exactly.
        for raw in [[UInt8](), [0, 1, 2], Array("QUFBQQ==".utf8), Array("{\"x\":\"\n\"}".utf8), Array("{ends with blank ".utf8)] {
            let r = CHUNKRecord(sequence: 0, total: 0, data: raw)
            #expect(r.presentation.hasPrefix("\\# "), "\(raw)")
            #expect(try CHUNKRecord(presentation: r.presentation) == r)
        }
        // Errors.
        for bad in ["", "1 2 JSON \"\"", "x 1 JSON \"\" AA==", "1 65536 JSON \"\" AA==", "1 1 XML \"\" AA==", "1 1 FORMAT256 \"\" AA==",
                    "1 1 JSON zz AA==", "1 1 JSON abc AA==", "1 1 JSON \"\" AA=", "1 1 JSON \"\" A@==", "\\# 3 0102", "\\# x 01", "\\# 9 00"] {
            expectCode(.malformed, "\(bad)") { _ = try CHUNKRecord(presentation: bad) }
        }
    }

    @Test func genericForm() throws {
        #expect(GenericRData.presentation([]) == "\\# 0")
        #expect(try GenericRData.parse("\\# 0") == [])
        #expect(try GenericRData.parse("\\# 3 0a 0B0c") == [10, 11, 12])
        #expect(GenericRData.isGeneric("\\# 1 00"))
        #expect(!GenericRData.isGeneric("0 0 JSON"))
        expectCode(.malformed) { _ = try GenericRData.parse("\\# 2 00") }
        expectCode(.malformed) { _ = try GenericRData.parse("\\# 1 0") }
        expectCode(.malformed) { _ = try GenericRData.parse("# 1 00") }
        expectCode(.malformed) { _ = try GenericRData.parse("\\# 65536 00") }
        // Any type accepts the generic form in a whole line; unknown types only that.
        let rr = try ResourceRecord(presentation: "x.example. 60 IN TYPE4242 \\# 2 abcd")
        #expect(rr.type == RRType(4242) && rr.rdata == [0xAB, 0xCD] && rr.ttl == 60)
        #expect(rr.presentation == "x.example.\t60\tIN\tTYPE4242\t\\# 2 abcd")
        expectCode(.malformed) { _ = try ResourceRecord(presentation: "x.example. 60 IN A 192.0.2.1") }
        #expect(try ResourceRecord(presentation: "x.example. IN 60 CHUNK 1 1 JSON \"\" AA==").ttl == 60)
        #expect(try ResourceRecord(presentation: "x 60 CHUNK 1 1 JSON \"\" AA==", origin: try DNSName("example.")).name.description == "x.example.")
        expectCode(.malformed, "no TTL") { _ = try ResourceRecord(presentation: "x.example. IN CHUNK 1 1 JSON \"\" AA==") }
        #expect(try ResourceRecord(presentation: "x.example. IN CHUNK 1 1 JSON \"\" AA==", defaultTTL: 5).ttl == 5)
        expectCode(.malformed, "legacy code, CHUNK syntax") { _ = try ResourceRecord(presentation: "x. 1 IN TYPE65015 1 1 JSON \"\" AA=") }
        #expect(try ResourceRecord(presentation: "x. 1 IN TYPE65015 1 1 JSON \"\" AA==").type == .chunkLegacy)
        expectCode(.malformed, "line break inside") { _ = try ResourceRecord(presentation: "x. 1 IN CHUNK 1 1 JSON\n\"\" AA==") }
        #expect(try ResourceRecord(presentation: "x. 1 IN CHUNK 1 1 JSON \"\" AA==\n").rdata.count == 10)
    }
}

@Suite("KEY, DNSKEY, SIG")
struct KeyRecordTests {
    @Test func dnskeyPresentationWithBlanks() throws {
        let b64 = "n4PdnZzn76HdYWeBRMVgCm2r5PmQQeObNGN74rOWHHNIg9HwZUQvPmP7e7+qBIc4hTvYreX2YPH8XXcGttePbA=="
        let split = "example.com. 3600 IN DNSKEY 257 3 13 \(b64.prefix(40)) \(b64.dropFirst(40).prefix(20))\t\(b64.dropFirst(60))"
        let line = try DNSKEYRecord.parsePresentationLine(split)
        #expect(line.record.keyTag == 23719)
        #expect(line.record.presentation == "257 3 13 \(b64)")
        #expect(try DNSKEYRecord(rdata: line.record.rdata()) == line.record)
        #expect(try DNSKEYRecord(presentation: "257 3 13 \(b64)") == line.record)
        expectCode(.malformed, "not DNSKEY") { _ = try DNSKEYRecord.parsePresentationLine("example.com. 3600 IN KEY 257 3 13 \(b64)") }
        expectCode(.malformed, "no TTL") { _ = try DNSKEYRecord.parsePresentationLine("example.com. IN DNSKEY 257 3 13 \(b64)") }
        expectCode(.malformed, "relative owner") { _ = try DNSKEYRecord.parsePresentationLine("example.com 3600 IN DNSKEY 257 3 13 \(b64)") }
        expectCode(.malformed, "bad base64") { _ = try DNSKEYRecord.parsePresentationLine("example.com. 3600 IN DNSKEY 257 3 13 \(b64.dropLast())") }
        expectCode(.malformed, "no key") { _ = try DNSKEYRecord.parsePresentationLine("example.com. 3600 IN DNSKEY 257 3 13") }
        expectCode(.malformed, "flags too big") { _ = try DNSKEYRecord(presentation: "65536 3 13 \(b64)") }
        expectCode(.malformed, "RDATA 3 bytes") { _ = try DNSKEYRecord(rdata: [1, 1, 3]) }
    }

    @Test func keyTags() throws {
        // RFC 4034 Appendix B worked example is not given numerically; use known keys instead:
        // the vector's ECDSA key above (23719), and algorithm 1 taking the modulus' bytes.
        let rsamd5 = DNSKEYRecord(flags: 256, algorithm: 1, publicKey: [1, 3, 0xAA, 0xBB, 0xCC, 0xDD])
        #expect(rsamd5.keyTag == 0xBBCC)
        // A well-known root KSK (20326, algorithm 8).
        let root = "AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwNR1AkUTV74bU="
        let k = try DNSKEYRecord(presentation: "257 3 8 \(root)")
        #expect(k.keyTag == 20326)
        #expect(KEYRecord(flags: 257, algorithm: 8, publicKey: k.publicKey).keyTag == 20326)
    }

    @Test func keyRecord() throws {
        let key = KEYRecord(algorithm: 15, publicKey: [UInt8](repeating: 0x11, count: 32))
        #expect(key.flags == 256 && key.protocol == 3)
        let owner = try DNSName("edge1.example.net.")
        let text = key.presentationLine(owner: owner)
        #expect(text == "edge1.example.net.\t3600\tIN\tKEY\t256 3 15 ERERERERERERERERERERERERERERERERERERERERERE=")
        let line = try KEYRecord.parsePresentationLine(text)
        #expect(line.owner == owner && line.ttl == 3600 && line.record == key)
        #expect(try KEYRecord(rdata: key.rdata()) == key)
        #expect(try ResourceRecord(presentation: text).presentation == text)
    }

    @Test func sigRecord() throws {
        let signer = try DNSName("kdc.example.")
        var sig = SIGRecord.sig0(algorithm: 15, keyTag: 4242, signerName: signer, inception: 1_767_225_540, expiration: 1_767_225_900)
        #expect(sig.isSIG0 && sig.labels == 0 && sig.originalTTL == 0)
        sig.signature = [9, 9]
        let rdata = sig.rdata()
        #expect(rdata.count == 18 + signer.wireLength + 2)
        #expect(try SIGRecord(rdata: rdata) == sig)
        #expect(sig.rdataWithoutSignature() == Array(rdata.dropLast(2)))
        #expect(sig.presentation == "TYPE0 15 0 0 20260101000500 20251231235900 4242 kdc.example. CQk=")
        expectCode(.malformed, "compressed signer") { _ = try SIGRecord(rdata: Array(rdata.prefix(18)) + [0xC0, 12]) }
        expectCode(.malformed, "short") { _ = try SIGRecord(rdata: Array(rdata.prefix(18))) }
        expectCode(.malformed, "signer truncated") { _ = try SIGRecord(rdata: Array(rdata.prefix(20))) }
        #expect(DNSTime.format(0) == "19700101000000")
        #expect(DNSTime.format(Int64(UInt32.max)) == "21060207062815")
        #expect(DNSTime.format(951_782_400) == "20000229000000")
    }
}
