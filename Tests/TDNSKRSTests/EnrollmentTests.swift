import Foundation
import Synchronization
import Testing
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSTransport
import TDNSWire

@testable import TDNSKRS

/// Enrollment (PROTOCOL §11, §21, contract §1 and §4): the UPDATE's RR has the node's
/// configured CHUNK type, the request announces the node's capabilities, a host name in the
/// package is resolved once and stored as an address, and the KDC's SIG(0) key is kept.
@Suite("Enrollment")
struct EnrollmentTests {
    static let goPackages = VectorFiles.directory.appendingPathComponent("go-daemons/enroll")

    @Test("a Go KDC's package (go-daemons capture): the UPDATE carries CHUNK type 65015 when chunk_rrtype=65015", arguments: [
        ("gvhpke.example.enroll", "hpke"), ("gvjose.example.enroll", "jose"), ("gvboth.example.enroll", "hpke"),
    ])
    func goPackageUpdate(file: String, encryption: String) throws {
        let package = try EnrollmentPackage(fileContents: Array(try Data(contentsOf: Self.goPackages.appendingPathComponent(file))))
        #expect(package.kdcAddress == "127.0.20.1:17360" && package.controlZone == "kdc.example.")
        for type in [RRType.chunkLegacy, .chunk] {
            let request = try Enrollment.prepare(package: package, notifyAddress: "127.0.20.21:17398", chunkType: type, now: 1_796_352_252)
            #expect(request.server.description == "127.0.20.1:17360")
            let m = try DNSMessage(wireEncoded: request.wire)
            let zone = try DNSName("kdc.example.")
            #expect(m.opcode == .update && m.questions == [Question(name: zone, type: .soa, rrClass: .in)])
            #expect(m.updates.count == 1)
            let rr = try #require(m.updates.first)
            #expect(rr.type == type, "the configured CHUNK type, \(type.rawValue)")
            #expect(rr.name.description == "_enroll.kdc.example." && rr.rrClass == .in && rr.ttl == 300)
            // What a KDC of either type accepts (PROTOCOL §11.4), signed by the control zone.
            let chunk = try TDNSMessages.parseEnrollmentUpdate(m, controlZone: try DNSName("kdc.example."), acceptedTypes: [type])
            // HPKE Base (enc ‖ ct: binary) for packages with an HPKE key, a JWE otherwise.
            let isJWE = chunk.data.allSatisfy { $0 >= 0x21 && $0 <= 0x7e } && chunk.data.count(where: { $0 == UInt8(ascii: ".") }) == 4
            #expect(isJWE == (encryption == "jose"))
            let sig = try #require(try SIG0.extract(from: m))
            #expect(sig.sig.signerName.description == "kdc.example.")
        }
    }

    /// A package of our KDC's shape (§19 fields) for a KDC key pair made here.
    static func package(address: String, kdcHPKE: HPKEPrivateKey, signing: JOSEPrivateKey, sig0Line: String) -> [UInt8] {
        let json = JSONValue.object([
            ("token", .string(String(repeating: "ab", count: 32))), ("node_id", .string("edge1.example.")),
            ("kdc_hpke_pubkey", .string(kdcHPKE.publicKey.hex)), ("kdc_jose_pubkey", .string("")),
            ("kdc_enrollment_address", .string(address)), ("control_zone", .string("kdc.example.")),
            ("kdc_signing_pubkey", .string(signing.publicKey.jwkJSON())), ("kdc_sig0_pubkey", .string(sig0Line)),
        ])
        return Array(("# package\n" + Base64.encode(json.serialized()) + "\n").utf8)
    }

    @Test("against a KDC on 127.0.0.1: localhost:port resolved once and stored, capabilities sent, kdc_sig0_pubkey kept, type 65015")
    func enrollAgainstLocalKDC() throws {
        let kdcHPKE = HPKEPrivateKey.generate()
        let signing = try JOSEPrivateKey.generate()
        let kdcSIG0 = try DNSSECPrivateKey.generate(algorithm: .ed25519)
        let sig0Line = KEYRecord(algorithm: 15, publicKey: kdcSIG0.dnskeyPublicKey).presentationLine(owner: try DNSName("kdc.example."))
        let requests = Mutex<[String]>([])
        let fake = try FakeKDC(chunkType: .chunkLegacy) { m in
            var answer = DNSMessage(id: m.id, opcode: .update, flags: DNSHeaderFlags(qr: true), questions: m.questions)
            // A Go KDC built with 65015 answers FORMERR to any other type (PROTOCOL §21).
            guard let rr = m.updates.first, rr.type == .chunkLegacy, let chunk = try? CHUNKRecord(rdata: rr.rdata),
                  let plain = try? HPKECipher.open(chunk.data, with: kdcHPKE),
                  let request = try? JSONValue.parse(plain, maxDepth: 4, maxSize: 65536),
                  let nodeKey = request["hpke_pubkey"]?.stringValue.flatMap({ try? HPKEPublicKey(text: Array($0.utf8)) })
            else {
                answer.rcode = .formErr
                return answer
            }
            requests.withLock { $0.append(String(decoding: plain, as: UTF8.self)) }
            let confirmation = JSONValue.object([
                ("node_id", .string("edge1.example.")), ("status", .string("success")),
                ("kdc_hpke_pubkey", .string(kdcHPKE.publicKey.hex)), ("timestamp", .string("2027-01-15T08:00:00Z")),
            ]).serialized()
            guard let sealed = try? HPKECipher.sealAuth(confirmation, to: nodeKey, from: kdcHPKE),
                  let option = try? ChunkOption(contentType: .enrollmentConfirmation, content: sealed).ednsOption() else { return nil }
            answer.edns = EDNS(udpPayloadSize: 1232, options: [option])
            return answer
        }
        let root = NSTemporaryDirectory() + "tdnskrs-enroll-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let lines = Mutex<[String]>([])
        let node = try KRSNode(
            arguments: ["state_dir=\(root)/state", "key_dir=\(root)/keys", "chunk_rrtype=65015", "now=1800000000"],
            log: { _, l in lines.withLock { $0.append(l) } })
        let text = Self.package(address: "localhost:\(fake.address.port)", kdcHPKE: kdcHPKE, signing: signing, sig0Line: sig0Line)
        let id = try node.enroll(package: text, notifyAddress: "127.0.0.1:5398")
        #expect(id == "edge1.example.")

        // The request: capabilities announced, members sorted as a Go map marshals them.
        let request = try #require(requests.withLock { $0.first })
        #expect(request.hasPrefix(#"{"auth_token":""#))
        #expect(request.contains(#","capabilities":["jws-es256","sig0"],"hpke_pubkey":""#))
        let keys = try JSONValue.parse(Array(request.utf8)).objectKeys
        #expect(keys == ["auth_token", "capabilities", "hpke_pubkey", "notify_address", "sig0_pubkey", "timestamp"])

        // krs.conf: the resolved address, the kept type, the KDC's keys.
        let conf = try String(contentsOfFile: root + "/state/krs.conf", encoding: .utf8)
        #expect(conf.contains("\nkdc_address=127.0.0.1:\(fake.address.port)\n"), "\(conf)")
        #expect(conf.contains("\nchunk_rrtype=65015\n"))
        #expect(conf.contains("\nkdc_sig0_pubkey=\(root)/state/kdc.sig0.pubkey\n"))
        #expect(lines.withLock { $0.contains { $0.contains("localhost:\(fake.address.port) resolved to 127.0.0.1:\(fake.address.port)") } })
        let s = node.settings
        #expect(s.kdcAddress?.description == "127.0.0.1:\(fake.address.port)")
        #expect(s.kdcSIG0Key == KEYRecord(algorithm: 15, publicKey: kdcSIG0.dnskeyPublicKey))
        #expect(s.requireNotifySignature && s.requireSignature && s.chunkType == .chunkLegacy)
        // The state directory is the node's own.
        let mode = try FileManager.default.attributesOfItem(atPath: root + "/state")[.posixPermissions] as? Int
        #expect(mode == 0o700)
    }

    @Test("with the wrong CHUNK type a Go-built KDC answers FORMERR: enrollment fails, nothing stored")
    func wrongTypeRefused() throws {
        let kdcHPKE = HPKEPrivateKey.generate()
        let fake = try FakeKDC(chunkType: .chunkLegacy) { m in
            var answer = DNSMessage(id: m.id, opcode: .update, flags: DNSHeaderFlags(qr: true), rcode: .formErr, questions: m.questions)
            guard m.updates.first?.type != .chunkLegacy,
                  let option = try? ChunkOption(contentType: .enrollmentConfirmation, content: Array(#"{"status":"error","error_message":"must contain CHUNK record"}"#.utf8)).ednsOption()
            else { return nil }
            answer.edns = EDNS(udpPayloadSize: 1232, options: [option])
            return answer
        }
        let root = NSTemporaryDirectory() + "tdnskrs-enroll-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let node = try KRSNode(arguments: ["state_dir=\(root)/state", "key_dir=\(root)/keys", "now=1800000000"])
        let text = Self.package(address: "127.0.0.1:\(fake.address.port)", kdcHPKE: kdcHPKE, signing: try JOSEPrivateKey.generate(),
                                sig0Line: "")
        let e = #expect(throws: TDNSError.self) { _ = try node.enroll(package: text, notifyAddress: "127.0.0.1:5398") }
        #expect(e?.code == .dns && e?.reason.contains("must contain CHUNK record") == true)
        #expect(!FileManager.default.fileExists(atPath: root + "/state/krs.conf"))
    }

    @Test("kdc_enrollment_address: IP:port as given, [v6]:port, host:port resolved (IPv4 first), anything else refused")
    func addresses() throws {
        #expect(try KDCAddress.resolve("192.0.2.7:5353", log: { _, _ in }).description == "192.0.2.7:5353")
        #expect(try KDCAddress.resolve("[2001:db8::7]:53", log: { _, _ in }).description == "[2001:db8::7]:53")
        #expect(try KDCAddress.resolve("localhost:53", log: { _, _ in }).description == "127.0.0.1:53")
        for bad in ["localhost", "localhost:0", "localhost:99999", ":53", "bad host:53", "a/b:53"] {
            let e = #expect(throws: TDNSError.self) { _ = try KDCAddress.resolve(bad, log: { _, _ in }) }
            #expect(e?.code == .malformed, "\(bad)")
        }
    }
}

extension JSONValue {
    /// The member names of an object, in order.
    var objectKeys: [String] {
        guard case .object(let members) = self else { return [] }
        return members.map(\.0)
    }
}
