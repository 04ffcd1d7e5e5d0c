import TDNSCore
import TDNSTestSupport
import Testing

@testable import TDNSWire

/// A 12-byte header (ID 0, no flags, all counts 0) followed by `body`: a buffer in which
/// compression pointers ≥ 12 are legal.
private func message(_ body: [UInt8]) -> [UInt8] { [UInt8](repeating: 0, count: 12) + body }

/// Reads a name at `offset` of `bytes` with compression allowed.
private func readName(_ bytes: [UInt8], at offset: Int) throws -> (DNSName, Int) {
    var r = WireReader(bytes, range: offset..<bytes.count)
    let name = try DNSName(wireEncoded: &r, allowCompression: true)
    return (name, r.position)
}

@Suite("DNS names")
struct DNSNameTests {
    @Test func presentationRoundTrip() throws {
        for text in [".", "com.", "example.com.", "krs1.example.6a2f00c2.kdc.example.", "_enroll.kdc.example.", "a-b.c_d.E.", "*.wild."] {
            let name = try DNSName(text)
            #expect(name.description == text)
            #expect(try DNSName(wireEncoded: name.wireEncoded).isIdentical(to: name))
        }
        #expect(DNSName.root.isRoot)
        #expect(DNSName.root.wireEncoded == [0])
        #expect(try DNSName("example.com.").wireEncoded == [7] + Array("example".utf8) + [3] + Array("com".utf8) + [0])
    }

    @Test func escapes() throws {
        let dotted = try DNSName("a\\.b.example.")
        #expect(dotted.labelCount == 2)
        #expect(dotted.labels[0] == Array("a.b".utf8))
        #expect(dotted.description == "a\\.b.example.")
        #expect(try DNSName("\\065\\066c.").labels[0] == Array("ABc".utf8))
        #expect(try DNSName("a\\ b.").description == "a\\032b.")
        #expect(try DNSName("a\\032b.") == (try DNSName("a\\ b.")))
        #expect(try DNSName("\\000\\255.").labels[0] == [0, 255])
        #expect(try DNSName("\\000\\255.").description == "\\000\\255.")
        #expect(try DNSName("a\\@\\$\\;\\(\\)\\\"\\\\.").labels[0] == Array("a@$;()\"\\".utf8))
        // Every octet survives printing and parsing.
        let all = (0...255).map { UInt8($0) }
        for half in [all[0..<128], all[128..<256]] {
            let labels = stride(from: half.startIndex, to: half.endIndex, by: 43).map { Array(half[$0..<min($0 + 43, half.endIndex)]) }
            let name = try DNSName(labels: labels)
            #expect(try DNSName(name.description).isIdentical(to: name))
        }
        // Bad escapes.
        for bad in ["\\256.", "\\25.", "\\2.", "a\\", "\\0x.", "a b.", "a\"b.", "a(b.", "a;b.", "é.", "a\tb."] {
            expectCode(.malformed, "\(bad)") { _ = try DNSName(bad) }
        }
    }

    @Test func relativeAndAbsolute() throws {
        expectCode(.malformed, "relative without origin") { _ = try DNSName("example.com") }
        expectCode(.malformed, "@ without origin") { _ = try DNSName("@") }
        let origin = try DNSName("kdc.example.")
        #expect(try DNSName("_enroll", origin: origin) == (try DNSName("_enroll.kdc.example.")))
        #expect(try DNSName("@", origin: origin) == origin)
        #expect(try DNSName("x.example.com.", origin: origin) == (try DNSName("x.example.com.")))
        for bad in ["", "..", ".a.", "a..b.", "a.."] {
            expectCode(.malformed, "\(bad)") { _ = try DNSName(bad, origin: origin) }
        }
    }

    @Test func labelAndNameLimits() throws {
        let l63 = String(repeating: "a", count: 63)
        let l64 = String(repeating: "a", count: 64)
        #expect(try DNSName("\(l63).").labels[0].count == 63)
        expectCode(.malformed, "64-octet label text") { _ = try DNSName("\(l64).") }
        expectCode(.malformed, "64-octet label") { _ = try DNSName(labels: [Array(l64.utf8)]) }
        expectCode(.malformed, "empty label") { _ = try DNSName(labels: [[]]) }
        // 4 × (1 + 62) + 1 = 253; + "a" label (2) = 255 OK; one more octet = 256.
        let l62 = String(repeating: "b", count: 62)
        let n255 = "a.\(l62).\(l62).\(l62).\(l62)."
        #expect(try DNSName(n255).wireLength == 255)
        expectCode(.malformed, "256-octet name") { _ = try DNSName("aa.\(l62).\(l62).\(l62).\(l62).") }
        expectCode(.malformed, "256-octet name from labels") {
            _ = try DNSName(labels: [[0x61, 0x61]] + Array(repeating: Array(l62.utf8), count: 4))
        }
        let big = try DNSName(n255)
        expectCode(.malformed, "prepending beyond 255") { _ = try big.prepending(label: "x") }
        // Wire: a 64-octet "label" has length byte 0x40, an extended label type.
        expectCode(.malformed, "0x40 label type") { _ = try DNSName(wireEncoded: [0x40] + Array(repeating: 0x61, count: 64) + [0]) }
        expectCode(.malformed, "0x80 label type") { _ = try DNSName(wireEncoded: [0x80, 0]) }
        // Wire: 256 octets uncompressed.
        let wire256: [UInt8] = [2, 0x61, 0x61] + (0..<4).flatMap { _ in [UInt8(62)] + Array(l62.utf8) } + [0]
        #expect(wire256.count == 256)
        expectCode(.malformed, "256-octet wire name") { _ = try DNSName(wireEncoded: wire256) }
        #expect(try DNSName(wireEncoded: Array(wire256.dropFirst(3))).wireLength == 253)
    }

    @Test func wireStrictness() throws {
        expectCode(.malformed, "empty") { _ = try DNSName(wireEncoded: []) }
        expectCode(.malformed, "no terminator") { _ = try DNSName(wireEncoded: [1, 0x61]) }
        expectCode(.malformed, "label runs past end") { _ = try DNSName(wireEncoded: [5, 0x61, 0]) }
        expectCode(.malformed, "trailing bytes") { _ = try DNSName(wireEncoded: [0, 0]) }
        expectCode(.malformed, "pointer where none allowed") { _ = try DNSName(wireEncoded: [0xC0, 0x0C]) }
    }

    @Test func compressionFollowsBackwardPointers() throws {
        // 12: 3com0   17: 7example ptr(12)   27: 3www ptr(17)
        let body: [UInt8] = [3] + Array("com".utf8) + [0]
            + [7] + Array("example".utf8) + [0xC0, 12]
            + [3] + Array("www".utf8) + [0xC0, 17]
        let m = message(body)
        let (com, end1) = try readName(m, at: 12)
        #expect(com.description == "com." && end1 == 17)
        let (example, end2) = try readName(m, at: 17)
        #expect(example.description == "example.com." && end2 == 27)
        let (www, end3) = try readName(m, at: 27)
        #expect(www.description == "www.example.com." && end3 == 33 && end3 == m.count)
        // A name that is only a pointer.
        let (again, end4) = try readName(m + [0xC0, 27], at: 33)
        #expect(again == www && end4 == 35)
    }

    @Test func compressionAttacksAreRejected() throws {
        // Pointer to itself.
        expectCode(.malformed, "self loop") { _ = try readName(message([0xC0, 12]), at: 12) }
        // Forward pointer.
        expectCode(.malformed, "forward") { _ = try readName(message([0xC0, 14, 1, 0x61, 0]), at: 12) }
        // Pointer into the current name (back to its own first label).
        expectCode(.malformed, "into current name") { _ = try readName(message([1, 0x61, 0xC0, 12]), at: 12) }
        // Two names pointing at each other: 12 → 14 is forward; starting at 14 → 12 → 14 loops.
        let pair = message([0xC0, 14, 0xC0, 12])
        expectCode(.malformed, "mutual loop from 12") { _ = try readName(pair, at: 12) }
        expectCode(.malformed, "mutual loop from 14") { _ = try readName(pair, at: 14) }
        // A longer cycle: 12:1a→16  16:1b→12 (read from 20 → 16 → 12 → 16 …).
        let cycle = message([1, 0x61, 0xC0, 16, 1, 0x62, 0xC0, 12, 0xC0, 16])
        expectCode(.malformed, "3-cycle") { _ = try readName(cycle, at: 20) }
        // Into the header.
        expectCode(.malformed, "into header") { _ = try readName(message([0xC0, 3]), at: 12) }
        // Truncated pointer.
        expectCode(.malformed, "truncated pointer") { _ = try readName(message([0xC0]), at: 12) }
        // Pointer past the end of the buffer.
        expectCode(.malformed, "pointer beyond buffer") { _ = try readName(message([0xC0, 0xFF]), at: 12) }
        // Pointed-to data that runs into the name that points at it: 12: 5 'a' 'b' … overlaps 16.
        expectCode(.malformed, "target overlaps pointer") { _ = try readName(message([5, 0x61, 0x62, 0x63, 0xC0, 12]), at: 16) }
        // Compression that builds a name over 255 octets.
        var body: [UInt8] = []
        var offsets: [Int] = []
        for i in 0..<5 {
            offsets.append(12 + body.count)
            body += [62] + Array(repeating: 0x61, count: 62)
            if i == 0 { body += [0] } else { body += [0xC0, UInt8(offsets[i - 1])] }
        }
        let long = message(body)
        #expect(try readName(long, at: offsets[3]).0.wireLength == 253)
        expectCode(.malformed, "> 255 via pointers") { _ = try readName(long, at: offsets[4]) }
    }

    @Test func comparisonAndHierarchy() throws {
        let a = try DNSName("KDC.Example.")
        let b = try DNSName("kdc.example.")
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(!a.isIdentical(to: b))
        #expect(a.canonical.isIdentical(to: b))
        #expect(Set([a, b]).count == 1)
        let sub = try DNSName("6a2fe001.KDC.example.")
        #expect(sub.isSubdomain(of: b))
        #expect(b.isSubdomain(of: b))
        #expect(b.isSubdomain(of: .root))
        #expect(!b.isSubdomain(of: sub))
        #expect(!(try DNSName("xkdc.example.")).isSubdomain(of: b))
        #expect(sub.labels(relativeTo: b) == [Array("6a2fe001".utf8)])
        #expect(b.labels(relativeTo: b) == [])
        #expect(sub.parent == b)
        #expect(DNSName.root.parent == nil)
        #expect(sub.label(0) == Array("6a2fe001".utf8))
        #expect(sub.label(9) == nil)
        #expect(try DNSName("a\\.b.c.").labelText(0) == "a\\.b")
    }

    @Test func buildingKDCNames() throws {
        let node = try DNSName("edge1.example.net.")
        let cz = try DNSName("kdc.example.com.")
        let manifest = try node.appending(cz.prepending(label: "6978914f"))
        #expect(manifest.description == "edge1.example.net.6978914f.kdc.example.com.")
        #expect(try manifest.prepending(label: "1").description == "1.edge1.example.net.6978914f.kdc.example.com.")
        #expect(try cz.prepending(labels: [Array("a".utf8), Array("b".utf8)]).description == "a.b.kdc.example.com.")
        // A label given as a string is taken literally, not as presentation text.
        #expect(try cz.prepending(label: "x.y").description == "x\\.y.kdc.example.com.")
        expectCode(.malformed) { _ = try cz.prepending(label: "") }
    }
}
