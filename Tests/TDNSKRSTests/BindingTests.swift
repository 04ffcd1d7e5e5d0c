import Foundation
import Synchronization
import Testing
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSWire

@testable import TDNSKRS

/// Contract §2: only a KDC signature over the manifest (Format 2, JWT) binds a distribution
/// to its ID, node, time and payload; everything else is legacy, refused with
/// require_signature=yes before anything is fetched.
@Suite("Binding: the KDC's signature covers the distribution")
struct BindingTests {
    /// A Format 1 manifest over `dataChunks` (or an inline blob) made as an on-path attacker
    /// can: the HMAC key is the node's public key.
    static func forgedManifest(_ kdc: TestKDC, id: String, timestamp: Int64, chunks: [CHUNKRecord], inlineBlob: [UInt8]? = nil) throws -> [UInt8] {
        var members: [(String, JSONValue)] = [("chunk_count", .integer(chunks.count))]
        if !chunks.isEmpty { members.append(("chunk_size", .integer(chunks.map(\.data.count).max() ?? 0))) }
        members.append(("metadata", .object([
            ("content", .string("key_operations")), ("crypto", .string("hpke")), ("distribution_id", .string(id)),
            ("distribution_ttl", .string("5m0s")), ("node_id", .string(kdc.nodeID)), ("timestamp", .integer(timestamp)),
        ])))
        if let inlineBlob { members.append(("payload", .string(Base64.encode(inlineBlob)))) }
        let data = JSONValue.object(members).serialized()
        let hmac = Digests.hmacSHA256(key: kdc.nodeHPKE.publicKey.rawRepresentation, data: [1] + data)
        return try CHUNKRecord(format: 1, hmac: hmac, sequence: 0, total: UInt16(chunks.count), data: data).rdata()
    }

    @Test("rollback: an old JWS-signed ciphertext re-wrapped under a new ID and time is refused with require_signature=yes, accepted with a warning only with no")
    func rollbackAttack() throws {
        let kdc = try TestKDC()
        let oldZSK = try TestKDC.newKey()
        // Ten days ago the KDC sent this ZSK: JWS around the ciphertext, Format 1 manifest.
        var o = TestKDC.Options()
        o.signJWS = true
        o.forceChunked = true
        o.chunkSize = 300
        o.timestamp = kdc.now - 864_000
        let old = try kdc.distribution("6a300010", entries: [TestKDC.rollKey(oldZSK)], o)
        let oldChunks = try old.dropFirst().map { try CHUNKRecord(rdata: $0) }
        // Today the attacker answers the node's queries: the harvested chunks under the ID
        // the node was NOTIFYed about, with the current time and a correct HMAC.
        let newID = "6a300099"
        let forged = [try Self.forgedManifest(kdc, id: newID, timestamp: kdc.now, chunks: oldChunks)] + old.dropFirst()

        let env = try ReceiverEnv(kdc)
        let before = env.snapshot()
        let e = #expect(throws: TDNSError.self) { try env.receiver(["require_signature=yes"]).process(distributionID: newID, records: forged) }
        #expect(e?.code == .unsigned)
        #expect(e?.reason == "distribution is not bound by a KDC signature (Format 1 HMAC manifest) and require_signature=yes")
        #expect(env.snapshot() == before, "nothing installed, nothing recorded")

        // The same as legacy (require_signature=no): accepted, not counted as signed, and the
        // log says the JWS bound nothing.
        let lines = Mutex<[String]>([])
        let receiver = try KeyReceiver(settings: KRSSettings(arguments: env.arguments(["require_signature=no"])),
                                       log: { _, l in lines.withLock { $0.append(l) } })
        let result = try receiver.process(distributionID: newID, records: forged)
        #expect(result.signed == false)
        #expect(env.keyFiles().count == 2)
        #expect(lines.withLock { $0.contains { $0.contains("accepted without a KDC signature binding it") && $0.contains("covers only the ciphertext") } })
    }

    @Test("rollback: a JWT distribution's ciphertext under a forged Format 1 manifest is refused with require_signature=yes")
    func jwtCiphertextUnderFormat1() throws {
        let kdc = try TestKDC()
        var o = TestKDC.Options()
        o.jwtManifest = true
        o.forceChunked = true
        o.chunkSize = 300
        let old = try kdc.distribution("6a300011", entries: [TestKDC.rollKey(try TestKDC.newKey())], o)
        let forged = [try Self.forgedManifest(kdc, id: "6a300012", timestamp: kdc.now, chunks: try old.dropFirst().map { try CHUNKRecord(rdata: $0) })] + old.dropFirst()
        let env = try ReceiverEnv(kdc)
        let e = #expect(throws: TDNSError.self) { try env.receiver(["require_signature=yes"]).process(distributionID: "6a300012", records: forged) }
        #expect(e?.code == .unsigned)
        // And the JWT manifest itself cannot be moved to another ID: it names its own.
        let moved = #expect(throws: TDNSError.self) { try env.receiver(["require_signature=yes"]).process(distributionID: "6a300012", records: old) }
        #expect(moved?.code == .wrongNode)
        #expect(env.keyFiles().isEmpty)
    }

    struct JWTCase: CustomStringConvertible, Sendable {
        let name: String
        let code: TDNSError.Code
        let mutate: @Sendable (inout TestKDC.Options, TestKDC) -> Void
        var description: String { name }
    }

    static let jwtCases: [JWTCase] = [
        JWTCase(name: "receiver_id names another node", code: .wrongNode) { o, _ in o.nodeIDInManifest = "krs2.example." },
        JWTCase(name: "distribution_id names another distribution", code: .wrongNode) { o, _ in o.manifestDistributionID = "6a30ffff" },
        JWTCase(name: "exp has passed", code: .stale) { o, kdc in
            o.ttl = "72h"; o.timestamp = kdc.now - 7200; o.jwtExpires = kdc.now - 3600
        },
        JWTCase(name: "iat older than distribution_ttl", code: .stale) { o, kdc in o.timestamp = kdc.now - 3600 },
        JWTCase(name: "iat in the future", code: .stale) { o, kdc in o.timestamp = kdc.now + 3600 },
        JWTCase(name: "chunk_hash does not match the data chunks", code: .authentication) { o, _ in
            o.mutateManifest = { m in
                if let i = m.firstIndex(where: { $0.0 == "chunk_hash" }) { m[i].1 = .string("sha256:" + String(repeating: "ab", count: 32)) }
            }
        },
        JWTCase(name: "chunked without chunk_hash", code: .authentication) { o, _ in
            o.mutateManifest = { m in m.removeAll { $0.0 == "chunk_hash" } }
        },
        JWTCase(name: "signed by another key", code: .authentication) { o, _ in o.jwsSigner = try? JOSEPrivateKey.generate() },
    ]

    @Test("JWT manifests bind receiver, ID, time and payload: each mismatch is refused, nothing changes", arguments: jwtCases)
    func jwtMismatch(_ c: JWTCase) throws {
        let kdc = try TestKDC()
        var o = TestKDC.Options()
        o.jwtManifest = true
        o.forceChunked = true
        o.chunkSize = 300
        c.mutate(&o, kdc)
        let records = try kdc.distribution("6a300020", entries: [TestKDC.rollKey(try TestKDC.newKey())], o)
        let env = try ReceiverEnv(kdc)
        let before = env.snapshot()
        let e = #expect(throws: TDNSError.self) { try env.receiver(["require_signature=yes"]).process(distributionID: "6a300020", records: records) }
        #expect(e?.code == c.code, "\(c.name): \(e.map { "\($0.code): \($0.reason)" } ?? "accepted")")
        #expect(env.snapshot() == before)
    }

    @Test("a good JWT manifest, chunked and inline, is bound (signed) and installs")
    func jwtGood() throws {
        for chunked in [false, true] {
            let kdc = try TestKDC()
            var o = TestKDC.Options()
            o.jwtManifest = true
            o.forceChunked = chunked
            o.chunkSize = 300
            let entries = chunked ? [TestKDC.rollKey(try TestKDC.newKey())] : [TestKDC.ping()]
            let env = try ReceiverEnv(kdc)
            let result = try env.receiver(["require_signature=yes"]).process(distributionID: "6a300021", records: try kdc.distribution("6a300021", entries: entries, o))
            #expect(result.signed)
        }
    }

    @Test("the manifest is authenticated before any data chunk: Format 1 refused at once with require_signature=yes")
    func format1RefusedFromManifestAlone() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        var o = TestKDC.Options()
        o.signJWS = true
        o.forceChunked = true
        let records = try kdc.distribution("6a300030", entries: [TestKDC.rollKey(try TestKDC.newKey())], o)
        let receiver = try env.receiver(["require_signature=yes"])
        let e = #expect(throws: TDNSError.self) {
            _ = try receiver.authenticateManifest(try CHUNKRecord(rdata: records[0]), for: try distID("6a300030"))
        }
        #expect(e?.code == .unsigned)
        // Without the requirement the same manifest authenticates (HMAC) and is not bound.
        let m = try env.receiver(["require_signature=no"]).authenticateManifest(try CHUNKRecord(rdata: records[0]), for: try distID("6a300030"))
        #expect(!m.isBound && m.chunkCount >= 1)
    }

    @Test("chunk_count × chunk_size (65535 when absent) must fit max_distribution_size before any data chunk")
    func sizeBeforeFetch() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let receiver = try env.receiver(["max_distribution_size=1048576"])
        func manifest(count: Int, size: Int?) throws -> CHUNKRecord {
            var members: [(String, JSONValue)] = [("chunk_count", .integer(count))]
            if let size { members.append(("chunk_size", .integer(size))) }
            members.append(("metadata", .object([
                ("content", .string("key_operations")), ("crypto", .string("hpke")), ("distribution_id", .string("6a300040")),
                ("node_id", .string(kdc.nodeID)), ("timestamp", .integer(kdc.now)),
            ])))
            let data = JSONValue.object(members).serialized()
            return CHUNKRecord(format: 1, hmac: Digests.hmacSHA256(key: kdc.nodeHPKE.publicKey.rawRepresentation, data: [1] + data),
                               sequence: 0, total: UInt16(count), data: data)
        }
        // A fake KDC announcing 20,000 chunks of 64 KiB: refused from the manifest alone.
        let big = #expect(throws: TDNSError.self) { _ = try receiver.authenticateManifest(try manifest(count: 20000, size: 65535), for: try distID("6a300040")) }
        #expect(big?.code == .tooBig)
        // No chunk_size: each chunk may be 65535 bytes. 16 fit in 1 MiB, 17 do not.
        _ = try receiver.authenticateManifest(try manifest(count: 16, size: nil), for: try distID("6a300040"))
        let absent = #expect(throws: TDNSError.self) { _ = try receiver.authenticateManifest(try manifest(count: 17, size: nil), for: try distID("6a300040")) }
        #expect(absent?.code == .tooBig)
        _ = try receiver.authenticateManifest(try manifest(count: 1000, size: 1000), for: try distID("6a300040"))
    }

    @Test("a data chunk larger than the manifest's chunk_size is refused")
    func chunkLargerThanChunkSize() throws {
        let kdc = try TestKDC()
        var o = TestKDC.Options()
        o.forceChunked = true
        o.chunkSize = 100
        o.mutateManifest = { m in
            if let i = m.firstIndex(where: { $0.0 == "chunk_size" }) { m[i].1 = .integer(50) }
        }
        let env = try ReceiverEnv(kdc)
        let records = try kdc.distribution("6a300041", entries: [TestKDC.rollKey(try TestKDC.newKey())], o)
        let e = #expect(throws: TDNSError.self) { try env.receiver().process(distributionID: "6a300041", records: records) }
        #expect(e?.code == .malformed)
        #expect(e?.reason.contains("chunk_size is 50") == true)
    }

    @Test("crypto hpke with the encapsulated key twice (E ‖ E ‖ AEAD): opened, audited")
    func doubledKey() throws {
        let kdc = try TestKDC()
        var o = TestKDC.Options()
        o.mutateCiphertext = { ct in ct = Array(ct.prefix(32)) + ct }  // crypto stays "hpke"
        let env = try ReceiverEnv(kdc)
        let result = try env.receiver().process(distributionID: "6a300050", records: try kdc.distribution("6a300050", entries: [TestKDC.ping()], o))
        #expect(result.reportJSON.contains("op-0"))
        let audit = try String(contentsOfFile: env.stateDir + "/audit.log", encoding: .utf8)
        #expect(audit.contains(#""result":"accepted","note":"hpke payload carried its encapsulated key twice (Go KDC); opened the rest""#))
        // A first block that is not a copy is not skipped: the AEAD fails.
        var bad = TestKDC.Options()
        bad.mutateCiphertext = { ct in var prefix = Array(ct.prefix(32)); prefix[0] ^= 1; ct = prefix + ct }
        let e = #expect(throws: TDNSError.self) {
            try env.receiver().process(distributionID: "6a300051", records: try kdc.distribution("6a300051", entries: [TestKDC.ping()], bad))
        }
        #expect(e?.code == .cryptoFailure)
    }

    @Test("key_dir unwritable: nothing installed, install-failed recorded, every key in failed_keys with storage: <reason>")
    func storageFailure() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let receiver = try env.receiver()
        // Tests run as root, so a mode cannot make the directory unwritable: a file takes its place.
        try FileManager.default.removeItem(atPath: env.keyDir)
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: env.keyDir))
        let ksk = try TestKDC.newKey(ksk: true)
        let zsk = try TestKDC.newKey()
        let result = try receiver.process(distributionID: "6a300060", records: try kdc.distribution("6a300060", entries: [
            TestKDC.rollKey(ksk), TestKDC.rollKey(zsk), TestKDC.ping(),
        ]))
        let failure = try #require(result.failureReason)
        #expect(failure.hasPrefix("storage: "))
        #expect(result.keysChanged == 0 && result.keysInstalled == 0)
        let report = try JSONValue.parse(Array(result.reportJSON.utf8))
        let failed = try #require(report["failed_keys"]?.arrayValue)
        #expect(failed.count == 2)
        #expect(failed.allSatisfy { $0["error"]?.stringValue?.hasPrefix("storage: ") == true })
        #expect(Set(failed.compactMap { $0["key_id"]?.stringValue }) == [String(ksk.tag), String(zsk.tag)])
        #expect(report["successful_keys"]?.arrayValue?.count == 1, "the ping still succeeded")
        let audit = try String(contentsOfFile: env.stateDir + "/audit.log", encoding: .utf8)
        #expect(audit.contains(#""result":"install-failed""#) && audit.contains("storage: "))
        #expect(try receiver.state.wasProcessed(node: try DNSName(kdc.nodeID), distributionID: try distID("6a300060")))
    }

    @Test("state_dir and key_dir: created 0700 when missing, tightened to 0700 (logged) when group/other may enter")
    func privateDirectories() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        try FileManager.default.createDirectory(atPath: env.stateDir, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: env.stateDir)
        try FileManager.default.setAttributes([.posixPermissions: 0o750], ofItemAtPath: env.keyDir)
        let lines = Mutex<[String]>([])
        _ = try KeyReceiver(settings: KRSSettings(arguments: env.arguments()), log: { _, l in lines.withLock { $0.append(l) } })
        func mode(_ p: String) throws -> Int { try FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as? Int ?? -1 }
        #expect(try mode(env.stateDir) == 0o700 && mode(env.keyDir) == 0o700)
        #expect(lines.withLock { $0.contains { $0.contains("state_dir") && $0.contains("0755") && $0.contains("tightened to 0700") } })
        #expect(lines.withLock { $0.contains { $0.contains("key_dir") && $0.contains("0750") } })
        // Missing: created 0700.
        let fresh = env.root + "/new/state"
        let keys = env.root + "/new/keys"
        _ = try KeyReceiver(settings: KRSSettings(arguments: env.arguments(["state_dir=\(fresh)", "key_dir=\(keys)"])))
        #expect(try mode(fresh) == 0o700 && mode(keys) == 0o700)
        // A file where the directory should be: a configuration error naming the setting.
        let file = env.root + "/file"
        try Data().write(to: URL(fileURLWithPath: file))
        let e = #expect(throws: TDNSError.self) { _ = try KeyReceiver(settings: KRSSettings(arguments: env.arguments(["key_dir=\(file)"]))) }
        #expect(e?.code == .config && e?.reason.hasPrefix("key_dir") == true)
    }
}
