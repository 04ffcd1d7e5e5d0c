import Foundation
import Testing
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSWire

@testable import TDNSKRS

/// The bad-input catalogue (issue: "Bad input"): every case is refused with its own code, and
/// the key directory and the state directory (replay record, components) are unchanged.
@Suite("Bad-input catalogue")
struct CatalogueTests {
    struct Case: CustomStringConvertible, Sendable {
        let name: String
        let code: TDNSError.Code
        let extraArguments: [String]
        /// Returns the distribution ID and records to submit; may prepare the environment.
        let build: @Sendable (TestKDC, ReceiverEnv) throws -> (String, [[UInt8]])
        var description: String { name }

        init(_ name: String, _ code: TDNSError.Code, args: [String] = [],
             _ build: @escaping @Sendable (TestKDC, ReceiverEnv) throws -> (String, [[UInt8]])) {
            self.name = name
            self.code = code
            self.extraArguments = args
            self.build = build
        }
    }

    static func good(_ kdc: TestKDC, _ o: TestKDC.Options = .init(), id: String = "6a2f0001") throws -> (String, [[UInt8]]) {
        (id, try kdc.distribution(id, entries: [TestKDC.rollKey(try TestKDC.newKey())], o))
    }

    /// A ping fits inline in the manifest (PROTOCOL §2.5), so manifest payload defects can be tested.
    static func inlinePing(_ kdc: TestKDC, _ o: TestKDC.Options) throws -> (String, [[UInt8]]) {
        ("6a2f000a", try kdc.distribution("6a2f000a", entries: [TestKDC.ping()], o))
    }

    static func withEntry(_ kdc: TestKDC, _ entry: JSONValue, _ o: TestKDC.Options = .init()) throws -> (String, [[UInt8]]) {
        ("6a2f0002", try kdc.distribution("6a2f0002", entries: [entry], o))
    }

    static func chunked(_ mutate: @escaping @Sendable (inout [[UInt8]]) throws -> Void) -> @Sendable (TestKDC, ReceiverEnv) throws -> (String, [[UInt8]]) {
        { kdc, _ in
            var o = TestKDC.Options()
            o.forceChunked = true
            o.chunkSize = 100
            var (id, records) = try good(kdc, o)
            try mutate(&records)
            return (id, records)
        }
    }

    /// A JWE compact with a replaced protected header (the rest from a real JWE).
    static func jweWithHeader(_ kdc: TestKDC, _ header: String, tagLength: Int = 16) throws -> (String, [[UInt8]]) {
        var o = TestKDC.Options()
        o.crypto = .jose
        o.mutateCiphertext = { ct in
            var parts = ct.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map(Array.init)
            parts[0] = Array(Base64URL.encode(Array(header.utf8)).utf8)
            if tagLength != 16, let tag = try? Base64URL.decode(parts[4]) {
                parts[4] = Array(Base64URL.encode(Array(tag.prefix(tagLength))).utf8)
            }
            ct = Array(parts.joined(separator: [UInt8(ascii: ".")]))
        }
        return try good(kdc, o)
    }

    static let epk = #""epk":{"kty":"EC","crv":"P-256","x":"Ley6tW2H9WLZ3VK9VbCe9tFLiOZhbPlzFwvuV6TEX0w","y":"GHkWvDVAmp-ZjDN6IOHmYGddDzKPcbwiu9mJoFhTs1U"}"#

    static let cases: [Case] = [
        Case("truncated manifest RDATA", .malformed) { kdc, _ in
            var (id, r) = try good(kdc); r[0].removeLast(3); return (id, r)
        },
        Case("overlong manifest RDATA (trailing byte)", .malformed) { kdc, _ in
            var (id, r) = try good(kdc); r[0].append(0); return (id, r)
        },
        Case("HMACLen beyond the RDATA", .malformed) { kdc, _ in
            var (id, r) = try good(kdc); r[0][1] = 0xff; r[0][2] = 0xff; return (id, r)
        },
        Case("RDATA shorter than the fixed fields", .malformed) { _, _ in ("6a2f0003", [[1, 0, 0, 0]]) },
        Case("sequence 0 twice, different", .malformed) { kdc, _ in
            let (id, r) = try good(kdc)
            let other = try kdc.distribution(id, entries: [TestKDC.ping()])
            return (id, r + [other[0]])
        },
        Case("no manifest at all", .malformed, chunked { r in r.removeFirst() }),
        Case("chunk_count 0 and no payload", .malformed) { kdc, _ in
            var o = TestKDC.Options()
            o.mutateManifest = { m in m.removeAll { $0.0 == "payload" } }
            return try inlinePing(kdc, o)
        },
        Case("Total differs from chunk_count", .malformed, chunked { r in
            var c = try CHUNKRecord(rdata: r[1]); c.total += 1; r[1] = try c.rdata()
        }),
        Case("a gap: data chunk 2 missing", .malformed, chunked { r in r.remove(at: 2) }),
        Case("sequence beyond chunk_count", .malformed, chunked { r in
            var c = try CHUNKRecord(rdata: r[1]); c.sequence = 60000; r[1] = try c.rdata()
        }),
        Case("65535 chunks claimed, few given", .malformed) { kdc, _ in
            var o = TestKDC.Options()
            o.forceChunked = true
            o.chunkSize = 100
            o.mutateManifest = { m in
                if let i = m.firstIndex(where: { $0.0 == "chunk_count" }) { m[i].1 = .integer(65535) }
            }
            var (id, r) = try good(kdc, o)
            for i in 1..<r.count { var c = try CHUNKRecord(rdata: r[i]); c.total = 65535; r[i] = try c.rdata() }
            return (id, r)
        },
        Case("conflicting duplicate of a data chunk", .malformed, chunked { r in
            var c = try CHUNKRecord(rdata: r[1]); c.data[0] ^= 1; r.append(try c.rdata())
        }),
        Case("a data chunk carrying an HMAC", .malformed, chunked { r in
            var c = try CHUNKRecord(rdata: r[1]); c.hmac = [UInt8](repeating: 7, count: 32); r[1] = try c.rdata()
        }),
        Case("inline payload and data chunks both", .malformed) { kdc, _ in
            let (id, r) = try good(kdc)
            return (id, r + [try CHUNKRecord(format: 1, hmac: [], sequence: 1, total: 1, data: Array("QUFB".utf8)).rdata()])
        },
        Case("oversize total", .tooBig, args: ["max_distribution_size=2048"]) { kdc, _ in
            var o = TestKDC.Options()
            o.forceChunked = true
            o.chunkSize = 1000
            return ("6a2f0004", try kdc.distribution("6a2f0004", plaintext: [UInt8](repeating: 0x41, count: 3000), o))
        },
        Case("bad base64 in the transport blob", .malformed) { kdc, _ in
            var o = TestKDC.Options(); o.forceChunked = true; o.mutateBlob = { b in b[5] = UInt8(ascii: "*") }
            return try good(kdc, o)
        },
        Case("bad base64 in the manifest payload", .malformed) { kdc, _ in
            var o = TestKDC.Options()
            o.mutateManifest = { m in
                if let i = m.firstIndex(where: { $0.0 == "payload" }) { m[i].1 = .string("not*base64") }
            }
            return try inlinePing(kdc, o)
        },
        Case("unknown crypto", .policy) { kdc, _ in
            var o = TestKDC.Options()
            o.mutateManifest = { m in
                if let i = m.firstIndex(where: { $0.0 == "metadata" }), case .object(var meta) = m[i].1 {
                    if let j = meta.firstIndex(where: { $0.0 == "crypto" }) { meta[j].1 = .string("rsa") }
                    m[i].1 = .object(meta)
                }
            }
            return try good(kdc, o)
        },
        Case("JWE alg none", .policy) { kdc, _ in try jweWithHeader(kdc, #"{"alg":"none","enc":"A256GCM",\#(epk)}"#) },
        Case("JWE alg ECDH-ES+A256KW", .policy) { kdc, _ in try jweWithHeader(kdc, #"{"alg":"ECDH-ES+A256KW","enc":"A256GCM",\#(epk)}"#) },
        Case("JWE alg dir", .policy) { kdc, _ in try jweWithHeader(kdc, #"{"alg":"dir","enc":"A256GCM"}"#) },
        Case("JWE with an 8-byte GCM tag", .malformed) { kdc, _ in
            try jweWithHeader(kdc, #"{"alg":"ECDH-ES","enc":"A256GCM",\#(epk)}"#, tagLength: 8)
        },
        Case("JWE epk off the curve", .cryptoFailure) { kdc, _ in
            try jweWithHeader(kdc, #"{"alg":"ECDH-ES","enc":"A256GCM","epk":{"kty":"EC","crv":"P-256","x":"Ley6tW2H9WLZ3VK9VbCe9tFLiOZhbPlzFwvuV6TEX0w","y":"Ley6tW2H9WLZ3VK9VbCe9tFLiOZhbPlzFwvuV6TEX0w"}}"#)
        },
        Case("JWS with alg HS256", .policy) { kdc, _ in
            var o = TestKDC.Options()
            o.signJWS = true
            o.mutateCiphertext = { ct in
                var parts = ct.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map(Array.init)
                parts[0] = Array(Base64URL.encode(Array(#"{"alg":"HS256"}"#.utf8)).utf8)
                parts[2] = Array(Base64URL.encode([UInt8](repeating: 1, count: 32)).utf8)
                ct = Array(parts.joined(separator: [UInt8(ascii: ".")]))
            }
            return try good(kdc, o)
        },
        Case("JWS signed by another key", .authentication) { kdc, _ in
            var o = TestKDC.Options(); o.signJWS = true; o.jwsSigner = try JOSEPrivateKey.generate()
            return try good(kdc, o)
        },
        Case("JWT manifest signed by another key", .authentication) { kdc, _ in
            var o = TestKDC.Options(); o.jwtManifest = true; o.jwsSigner = try JOSEPrivateKey.generate()
            return try good(kdc, o)
        },
        Case("expired JWT manifest", .stale) { kdc, _ in
            var o = TestKDC.Options(); o.jwtManifest = true; o.ttl = "48h"
            o.timestamp = kdc.now - 7200; o.jwtExpires = kdc.now - 3600
            return try good(kdc, o)
        },
        Case("JWT chunk_hash not matching the payload", .authentication) { kdc, _ in
            var o = TestKDC.Options(); o.jwtManifest = true
            o.mutateManifest = { m in
                if let i = m.firstIndex(where: { $0.0 == "chunk_hash" }) { m[i].1 = .string("sha256:" + String(repeating: "00", count: 32)) }
            }
            return try good(kdc, o)
        },
        Case("timestamp in the future", .stale) { kdc, _ in
            var o = TestKDC.Options(); o.timestamp = kdc.now + 3600
            return try good(kdc, o)
        },
        Case("stale timestamp", .stale) { kdc, _ in
            var o = TestKDC.Options(); o.timestamp = kdc.now - 3600
            return try good(kdc, o)
        },
        Case("manifest without a timestamp", .malformed) { kdc, _ in
            var o = TestKDC.Options()
            o.mutateManifest = { m in
                if let i = m.firstIndex(where: { $0.0 == "metadata" }), case .object(var meta) = m[i].1 {
                    meta.removeAll { $0.0 == "timestamp" }
                    m[i].1 = .object(meta)
                }
            }
            return try good(kdc, o)
        },
        Case("replayed distribution ID", .replay) { kdc, env in
            let (id, r) = try good(kdc)
            _ = try env.receiver().process(distributionID: id, records: r)
            return (id, try kdc.distribution(id, entries: [TestKDC.ping()]))
        },
        Case("distribution for another node", .wrongNode) { kdc, _ in
            var o = TestKDC.Options(); o.nodeIDInManifest = "krs2.example."
            return try good(kdc, o)
        },
        Case("manifest names another distribution ID", .wrongNode) { kdc, _ in
            var o = TestKDC.Options(); o.manifestDistributionID = "6a2f9999"
            return try good(kdc, o)
        },
        Case("manifest HMAC wrong", .authentication) { kdc, _ in
            var o = TestKDC.Options(); o.hmacKey = [UInt8](repeating: 9, count: 32)
            return try good(kdc, o)
        },
        Case("manifest format 3", .malformed) { kdc, _ in
            var (id, r) = try good(kdc); r[0][0] = 3; return (id, r)
        },
        Case("manifest is not JSON", .malformed) { kdc, _ in
            let data = Array("chunk_count: 0".utf8)
            let hmac = Digests.hmacSHA256(key: kdc.nodeHPKE.publicKey.rawRepresentation, data: [1] + data)
            return ("6a2f0005", [try CHUNKRecord(format: 1, hmac: hmac, sequence: 0, total: 0, data: data).rdata()])
        },
        Case("unsigned distribution while require_signature=yes", .unsigned, args: ["require_signature=yes"]) { kdc, _ in
            try good(kdc)
        },
        Case("tampered ciphertext", .cryptoFailure) { kdc, _ in
            var o = TestKDC.Options(); o.mutateCiphertext = { ct in ct[40] ^= 0x80 }
            return try good(kdc, o)
        },
        // An HPKE distribution to a node without an HPKE key is no refusal since issue 13: the
        // node answers it with a backend-mismatch report (MigrationTests.backendMismatch).
        Case("content type clear_text", .policy) { kdc, _ in
            var o = TestKDC.Options(); o.content = "clear_text"
            return try good(kdc, o)
        },
        Case("distribution ID not hex", .malformed) { kdc, _ in
            let (_, r) = try good(kdc); return ("../../etc", r)
        },
        Case("key tag differs from key_id", .keyMismatch) { kdc, _ in
            let k = try TestKDC.newKey()
            return try withEntry(kdc, TestKDC.rollKey(k, keyID: String(k.tag &+ 1)))
        },
        Case("private key not matching the DNSKEY", .keyMismatch) { kdc, _ in
            let k = try TestKDC.newKey()
            let other = try TestKDC.newKey()
            return try withEntry(kdc, TestKDC.rollKey(k, privatePEM: other.key.pkcs8PEM()))
        },
        Case("unsupported DNSSEC algorithm", .policy) { kdc, _ in
            try withEntry(kdc, TestKDC.rollKey(try TestKDC.newKey(), algorithm: 5))
        },
        Case("private key of another algorithm", .policy) { kdc, _ in
            let k = try TestKDC.newKey()
            let ed = try TestKDC.newKey(algorithm: .ed25519)
            return try withEntry(kdc, TestKDC.rollKey(k, privatePEM: ed.key.pkcs8PEM()))
        },
        Case("private key not base64", .malformed) { kdc, _ in
            let k = try TestKDC.newKey()
            guard case .object(var m) = TestKDC.rollKey(k) else { throw VectorError("shape") }
            if let i = m.firstIndex(where: { $0.0 == "private_key" }) { m[i].1 = .string("****") }
            return try withEntry(kdc, .object(m))
        },
        Case("zone name without trailing dot", .malformed) { kdc, _ in
            let k = try TestKDC.newKey(); return try withEntry(kdc, TestKDC.rollKey(k, zone: "example.com"))
        },
        Case("path characters in the zone name (../)", .malformed) { kdc, _ in
            let k = try TestKDC.newKey(); return try withEntry(kdc, TestKDC.rollKey(k, zone: "../../etc."))
        },
        Case("path characters in the zone name (/)", .malformed) { kdc, _ in
            let k = try TestKDC.newKey(); return try withEntry(kdc, TestKDC.rollKey(k, zone: "a/b.example."))
        },
        Case("DNSKEY owner differs from zone_name", .malformed) { kdc, _ in
            let k = try TestKDC.newKey(zone: "example.com.")
            return try withEntry(kdc, TestKDC.rollKey(k, zone: "example.net."))
        },
        Case("flags 300", .malformed) { kdc, _ in
            let k = try TestKDC.newKey()
            guard case .object(var m) = TestKDC.rollKey(k) else { throw VectorError("shape") }
            if let i = m.firstIndex(where: { $0.0 == "flags" }) { m[i].1 = .integer(300) }
            return try withEntry(kdc, .object(m))
        },
        Case("key_type KSK with ZSK flags", .malformed) { kdc, _ in
            try withEntry(kdc, TestKDC.rollKey(try TestKDC.newKey(), keyType: "KSK"))
        },
        Case("unknown operation", .malformed) { kdc, _ in
            try withEntry(kdc, .object([("operation", .string("format_disk"))]))
        },
        Case("ping without a nonce", .malformed) { kdc, _ in
            try withEntry(kdc, .object([("operation", .string("ping"))]))
        },
        Case("non-UTF-8 JSON payload", .malformed) { kdc, _ in
            ("6a2f0006", try kdc.distribution("6a2f0006", plaintext: Array(#"[{"operation":"ping","x":""#.utf8) + [0xff, 0xfe] + Array(#""}]"#.utf8)))
        },
        Case("deeply nested JSON payload", .malformed) { kdc, _ in
            ("6a2f0007", try kdc.distribution("6a2f0007", plaintext: Array((String(repeating: "[", count: 200) + String(repeating: "]", count: 200)).utf8)))
        },
        Case("payload that is not an array", .malformed) { kdc, _ in
            ("6a2f0008", try kdc.distribution("6a2f0008", plaintext: Array(#"{"operation":"ping"}"#.utf8)))
        },
        Case("a good key next to a bad one: nothing is installed", .keyMismatch) { kdc, _ in
            let good = try TestKDC.newKey()
            let bad = try TestKDC.newKey()
            return ("6a2f0009", try kdc.distribution("6a2f0009", entries: [TestKDC.rollKey(good), TestKDC.rollKey(bad, keyID: "1")]))
        },
    ]

    @Test("refused with its code, nothing changed", arguments: cases)
    func refused(_ c: Case) throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let (id, records) = try c.build(kdc, env)
        let before = env.snapshot()
        let receiver = try env.receiver(c.extraArguments)
        let error = #expect(throws: TDNSError.self) { try receiver.process(distributionID: id, records: records) }
        #expect(error?.code == c.code, "\(c.name): got \(error.map { "\($0.code): \($0.reason)" } ?? "no error")")
        #expect(env.snapshot() == before, "\(c.name): key or state directory changed")
    }

    @Test("the catalogue has at least 40 cases")
    func size() { #expect(Self.cases.count >= 40) }
}
