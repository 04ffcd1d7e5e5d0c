import Foundation
import Synchronization
import Testing
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSWire

@testable import TDNSKRS

/// Every distribution the real Go KDC sent in the captures of Tests/Vectors/go-daemons
/// (README-krs.md there): v1, v2, JOSE, chunked, and the node_operations payload with the
/// encapsulated key twice — processed by ``KeyReceiver`` with the node keys `krs-cli enroll`
/// wrote and the clock set to the capture's time.
@Suite("Go daemon captures")
struct GoDaemonTests {
    static let folder = VectorFiles.directory.appendingPathComponent("go-daemons")

    struct Capture: CustomStringConvertible, Sendable {
        let file: String
        var description: String { file }
    }

    static let captures: [Capture] = {
        let dir = folder.appendingPathComponent("distributions")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".json") && $0 != "index.json" }.sorted().map { Capture(file: $0) }
    }()

    /// What one capture file holds, as the tests need it.
    struct Fixture {
        let id: String
        let nodeID: String
        let controlZone: String
        let rdata: [[UInt8]]
        let timestamp: Int64
        let plaintext: JSONValue
        /// The report the Go KRS sent, when it could read the distribution.
        let goReport: JSONValue?
        let layout: String

        init(_ file: String) throws {
            let data = try Data(contentsOf: GoDaemonTests.folder.appendingPathComponent("distributions").appendingPathComponent(file))
            let json = try JSONValue.parse(Array(data), maxDepth: 16, maxSize: 1 << 22)
            func string(_ v: JSONValue?, _ what: String) throws -> String {
                guard let s = v?.stringValue else { throw VectorError("\(file): no \(what)") }
                return s
            }
            id = try string(json["distribution_id"], "distribution_id")
            nodeID = try string(json["node_id"], "node_id")
            controlZone = try string(json["control_zone"], "control_zone")
            layout = try string(json["layout"], "layout")
            guard let rrs = json["rrs"]?.arrayValue, !rrs.isEmpty else { throw VectorError("\(file): no rrs") }
            rdata = try rrs.map { rr in
                guard rr["type"]?.int64Value == 65015 else { throw VectorError("\(file): an RR is not CHUNK 65015") }
                return try hexBytes(try string(rr["rdata_hex"], "rdata_hex"))
            }
            guard let ts = json["manifest_json"]?["metadata"]?["timestamp"]?.int64Value else { throw VectorError("\(file): no timestamp") }
            timestamp = ts
            plaintext = try JSONValue.parse(Array(try string(json["plaintext"], "plaintext").utf8), maxDepth: 16, maxSize: 1 << 20)
            goReport = json["confirmation"]?["option_65004"]?["json"]
        }

        /// The node's key files from krs-files/: the folder is named after the node's crypto.
        var keyArguments: [String] {
            let kind = nodeID.hasPrefix("gvboth") ? "both" : nodeID.hasPrefix("gvjose") ? "jose" : "hpke"
            let dir = GoDaemonTests.folder.appendingPathComponent("krs-files").appendingPathComponent(kind).path
            let base = String(nodeID.dropLast())
            var args: [String] = []
            if kind != "jose" { args.append("hpke_private_key=\(dir)/\(base).hpke.privatekey") }
            if kind != "hpke" { args.append("jose_private_key=\(dir)/\(base).jose.privatekey") }
            return args
        }

        /// The report our KRS must send: what the Go KRS sent, or — where it could not read
        /// the distribution — the same shape made from the plaintext.
        var expectedReport: String {
            if let goReport { return goReport.serializedString() }
            let entries = plaintext.arrayValue ?? []
            if entries.first?["component_id"] != nil {
                return JSONValue.object([("successful_components", .array(entries.compactMap { e in
                    e["component_id"].map { .object([("component_id", $0)]) }
                }))]).serializedString()
            }
            return JSONValue.object([("successful_keys", .array(entries.compactMap { e -> JSONValue? in
                guard let zone = e["zone_name"], let key = e["key_id"] else { return nil }
                return .object([("zone_name", zone), ("key_id", key)])
            }))]).serializedString()
        }
    }

    /// A receiver for the capture's node, in temporary directories.
    final class Env {
        let root = NSTemporaryDirectory() + "tdnskrs-go-" + UUID().uuidString
        var state: String { root + "/state" }
        var keys: String { root + "/keys" }
        deinit { try? FileManager.default.removeItem(atPath: root) }

        func arguments(_ f: Fixture, _ extra: [String] = []) -> [String] {
            ["node_id=\(f.nodeID)", "control_zone=\(f.controlZone)", "state_dir=\(state)", "key_dir=\(keys)",
             "chunk_rrtype=65015", "now=\(f.timestamp + 30)"] + f.keyArguments + extra
        }
    }

    @Test("the folder holds the eleven captured distributions")
    func inventory() {
        #expect(Self.captures.count == 11)
    }

    @Test("processed by KeyReceiver: the report the Go KRS sent (or would have), keys installed", arguments: captures)
    func processed(_ capture: Capture) throws {
        let f = try Fixture(capture.file)
        let env = Env()
        let lines = Mutex<[String]>([])
        let receiver = try KeyReceiver(settings: KRSSettings(arguments: env.arguments(f)),
                                       log: { _, line in lines.withLock { $0.append(line) } })
        let result = try receiver.process(distributionID: f.id, records: f.rdata)
        #expect(result.reportJSON == f.expectedReport, "\(capture.file)")
        #expect(result.signed == false, "Go distributions are not bound by a KDC signature")
        let isComponents = f.plaintext.arrayValue?.first?["component_id"] != nil
        if isComponents {
            #expect(result.reportKind == .componentStatus)
            #expect(FileManager.default.fileExists(atPath: env.state + "/components.json"))
        } else {
            let keyCount = f.plaintext.arrayValue?.count ?? 0
            let files = (try? FileManager.default.contentsOfDirectory(atPath: env.keys)) ?? []
            #expect(files.filter { $0.hasSuffix(".private") }.count == keyCount, "\(files)")
            #expect(result.keysInstalled == keyCount)
        }
        // Accepted only as legacy: the warning says so.
        #expect(lines.withLock { $0.contains { $0.contains("accepted without a KDC signature binding it") } })
        let audit = try String(contentsOfFile: env.state + "/audit.log", encoding: .utf8)
        if capture.file.hasPrefix("d-nodeops-hpke-doubled") {
            #expect(audit.contains(#""note":"hpke payload carried its encapsulated key twice (Go KDC); opened the rest""#))
            #expect(lines.withLock { $0.contains { $0.contains("encapsulated key twice") } })
        } else {
            #expect(!audit.contains("encapsulated key twice"))
        }
    }

    @Test("with require_signature=yes every Go distribution is refused as unbound", arguments: captures)
    func refusedWhenSignaturesRequired(_ capture: Capture) throws {
        let f = try Fixture(capture.file)
        let env = Env()
        // Any KDC signing key: the Go KDC has none, so nothing it sends can be bound.
        let signer = try JOSEPrivateKey.generate()
        let receiver = try KeyReceiver(settings: KRSSettings(arguments: env.arguments(f, [
            "kdc_signing_pubkey=\(signer.publicKey.jwkJSON())", "require_signature=yes",
        ])))
        let e = #expect(throws: TDNSError.self) { try receiver.process(distributionID: f.id, records: f.rdata) }
        #expect(e?.code == .unsigned)
        #expect(e?.reason.contains("Format 1 HMAC manifest") == true)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: env.keys)) ?? []).isEmpty)
    }

    @Test("the doubled key is only accepted when the two copies are equal")
    func doubledKeyOnlyWhenEqual() throws {
        let f = try Fixture("d-nodeops-hpke-doubled-gvhpke.example.json")
        // Re-make the manifest with the first 32 bytes of the ciphertext changed: the HMAC is
        // keyed with the node's public key, so it can be recomputed, as in the capture.
        var manifest = try CHUNKRecord(rdata: f.rdata[0])
        var json = try JSONValue.parse(manifest.data, maxDepth: 8, maxSize: 65535)
        guard case .object(var members) = json, let i = members.firstIndex(where: { $0.0 == "payload" }),
              let payloadText = members[i].1.stringValue else { throw VectorError("shape") }
        var ciphertext = try Base64.decode(try Base64.decode(payloadText))
        ciphertext[0] ^= 1
        members[i].1 = .string(Base64.encode(Array(Base64.encode(ciphertext).utf8)))
        json = .object(members)
        manifest.data = json.serialized()
        let hpke = try HPKEPrivateKey(text: try Data(contentsOf: Self.folder.appendingPathComponent("krs-files/hpke/gvhpke.example.hpke.privatekey")).map { $0 })
        manifest.hmac = Digests.hmacSHA256(key: hpke.publicKey.rawRepresentation, data: [manifest.format] + manifest.data)
        let env = Env()
        let receiver = try KeyReceiver(settings: KRSSettings(arguments: env.arguments(f)))
        let e = #expect(throws: TDNSError.self) { try receiver.process(distributionID: f.id, records: [try manifest.rdata()]) }
        #expect(e?.code == .cryptoFailure)
    }
}
