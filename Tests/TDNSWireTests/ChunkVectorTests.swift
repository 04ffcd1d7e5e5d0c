import TDNSCore
import TDNSTestSupport
import Testing

@testable import TDNSWire

/// One CHUNK record of the Go vectors (chunk.json, manifest.json, distribution.json; field
/// names as the vector files have them).
struct ChunkVector: CustomTestStringConvertible, Sendable {
    let file: String
    let path: String
    let owner: String
    let format: Int
    let hmacHex: String?
    let sequence: Int
    let total: Int
    let dataLen: Int
    let rdataHex: String
    let rdataPresentation: String
    let rrText: String
    let goZonefileRoundTrip: String
    let goGenericRoundTrip: String

    var testDescription: String { "\(file)\(path)" }

    static func all() throws -> [ChunkVector] {
        var out: [ChunkVector] = []
        for file in ["chunk.json", "manifest.json", "distribution.json"] {
            let root = try VectorFiles.load(file)
            func walk(_ value: Any, _ path: String) {
                if let o = value as? [String: Any] {
                    if let hex = o["rdata_hex"] as? String {
                        out.append(ChunkVector(
                            file: file, path: path,
                            owner: o["owner"] as? String ?? "",
                            format: o["format"] as? Int ?? -1,
                            hmacHex: o["hmac_hex"] as? String,
                            sequence: o["sequence"] as? Int ?? -1,
                            total: o["total"] as? Int ?? -1,
                            dataLen: o["data_len"] as? Int ?? -1,
                            rdataHex: hex,
                            rdataPresentation: o["rdata_presentation"] as? String ?? "",
                            rrText: o["rr_text"] as? String ?? "",
                            goZonefileRoundTrip: o["zonefile_parse_roundtrip"] as? String ?? "",
                            goGenericRoundTrip: o["generic_rfc3597_parse_roundtrip"] as? String ?? ""))
                    }
                    for (k, v) in o { walk(v, path + "/" + k) }
                } else if let a = value as? [Any] {
                    for (i, v) in a.enumerated() { walk(v, path + "/\(i)") }
                }
            }
            walk(root, "")
        }
        return out.sorted { $0.testDescription < $1.testDescription }
    }
}

private let vectors: [ChunkVector] = (try? ChunkVector.all()) ?? []

@Suite("CHUNK vectors from the Go code")
struct ChunkVectorTests {
    @Test func allVectorRecordsFound() {
        // 4 in chunk.json, 2 in manifest.json, 1 in distribution.json.
        #expect(vectors.count == 7)
    }

    @Test("RDATA parses and re-serializes byte-identically", arguments: vectors)
    func wireRoundTrip(_ v: ChunkVector) throws {
        let rdata = try hexBytes(v.rdataHex)
        let chunk = try CHUNKRecord(rdata: rdata)
        #expect(Int(chunk.format) == v.format)
        #expect(Int(chunk.sequence) == v.sequence)
        #expect(Int(chunk.total) == v.total)
        #expect(chunk.data.count == v.dataLen)
        #expect(Hex.encode(chunk.hmac) == (v.hmacHex ?? ""))
        #expect(chunk.isManifest == (v.sequence == 0))
        #expect(try chunk.rdata() == rdata)
    }

    @Test("prints the Go presentation and reads it back", arguments: vectors)
    func presentation(_ v: ChunkVector) throws {
        let chunk = try CHUNKRecord(rdata: try hexBytes(v.rdataHex))
        // Go's printing is what the vectors record; Go's own zone-file parser fails on all of
        // them (zonefile_parse_roundtrip), ours reads its output back.
        #expect(chunk.presentation == v.rdataPresentation)
        #expect(try CHUNKRecord(presentation: v.rdataPresentation) == chunk)
    }

    @Test("whole RR line equals Go's rr_text and parses back", arguments: vectors)
    func rrText(_ v: ChunkVector) throws {
        let rr = ResourceRecord(
            name: try DNSName(v.owner), type: .chunk, rrClass: .in, ttl: 300, rdata: try hexBytes(v.rdataHex))
        #expect(rr.presentation == v.rrText)
        let back = try ResourceRecord(presentation: v.rrText)
        #expect(back == rr)
    }

    @Test("round-trips through the RFC 3597 generic form", arguments: vectors)
    func generic(_ v: ChunkVector) throws {
        #expect(v.goGenericRoundTrip.hasPrefix("ok"))
        let rdata = try hexBytes(v.rdataHex)
        let text = GenericRData.presentation(rdata)
        #expect(text == "\\# \(rdata.count) \(v.rdataHex)")
        #expect(try GenericRData.parse(text) == rdata)
        #expect(try CHUNKRecord(presentation: text) == CHUNKRecord(rdata: rdata))
        // Whole line in generic form, with the hex split and uppercased.
        let upper = v.rdataHex.uppercased()
        let mid = upper.index(upper.startIndex, offsetBy: upper.count / 2 / 2 * 2)
        let line = "\(v.owner) 300 IN TYPE65288 \\# \(rdata.count) \(upper[..<mid]) \(upper[mid...])"
        #expect(try ResourceRecord(presentation: line).rdata == rdata)
    }

    @Test("owner names parse like the KDC parses them (PROTOCOL §2.6)", arguments: vectors)
    func owners(_ v: ChunkVector) throws {
        let owner = try DNSName(v.owner)
        let cz = try DNSName("kdc.example.")
        let parsed = try TDNSMessages.parseChunkQueryName(owner, controlZone: cz)
        #expect(parsed.nodeID == (try DNSName("krs1.example.")))
        #expect(DistributionID(parsed.distributionID.text) == parsed.distributionID)
        if v.sequence == 0 {
            #expect(parsed.index == nil)
        } else {
            #expect(parsed.index == UInt16(v.sequence))
        }
        let rebuilt = try TDNSMessages.chunkQueryName(
            sequence: UInt16(v.sequence), nodeID: parsed.nodeID, distributionID: parsed.distributionID, controlZone: cz)
        #expect(rebuilt.isIdentical(to: owner))
    }

    @Test func distributionNotifyName() throws {
        let d = try VectorFiles.load("distribution.json")
        let dist = try d.objects("distributions")[0]
        let cz = try DNSName(try d.string("control_zone"))
        let qname = try DNSName(try dist.string("notify_qname"))
        #expect(try TDNSMessages.distributionID(fromNotifyName: qname, controlZone: cz).text == (try dist.string("distribution_id")))
        #expect(try TDNSMessages.notifyName(distributionID: try distID(try dist.string("distribution_id")), controlZone: cz).isIdentical(to: qname))
        let manifest = try TDNSMessages.chunkQueryName(
            sequence: 0, nodeID: try DNSName(try d.string("node_id")), distributionID: try distID(try dist.string("distribution_id")),
            controlZone: cz)
        #expect(manifest.description == (try dist.string("manifest_owner")))
    }

    @Test func dnskeyKeyTagFromDistributionVector() throws {
        let info = try VectorFiles.load("distribution.json").object("plaintext_info")
        let text = try info.string("dnskey_rr")
        let line = try DNSKEYRecord.parsePresentationLine(text)
        #expect(line.owner == (try DNSName("example.com.")))
        #expect(line.ttl == 3600)
        #expect(line.rrClass == .in)
        #expect(line.record.flags == 257)
        #expect(line.record.protocol == 3)
        #expect(line.record.algorithm == 13)
        #expect(line.record.publicKey.count == 64)
        #expect(line.record.isSecureEntryPoint)
        #expect(Int(line.record.keyTag) == info["key_tag"] as? Int)
        #expect(line.record.keyTag == 23719)
        // Printed back exactly as the KDC (miekg) wrote it.
        #expect(line.record.presentationLine(owner: line.owner, ttl: line.ttl) == text)
        #expect(try ResourceRecord(presentation: text).presentation == text)
        #expect(line.record.keyFileLine(owner: line.owner, ttl: 3600).hasPrefix("example.com. 3600 IN DNSKEY 257 3 13 n4Pdn"))
    }
}
