import Foundation
import Synchronization
import Testing
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSTransport
import TDNSWire

@testable import TDNSKRS

/// Issue 13, the KRS side (contract /work/design/issue13-contract.md): `supported_crypto` and
/// `preferred_crypto` in the enrollment request, the seed's package format, re-enrollment with
/// the old keys kept until the KDC acknowledged the new ones, the backend-mismatch report, and
/// the counters by backend.
@Suite("Migration: backends, seed packages, re-enrollment")
struct MigrationTests {
    // MARK: - a KDC for enrollment

    /// The KDC's keys, and packages in either format made with them.
    struct KDCKeys {
        let hpke = HPKEPrivateKey.generate()
        let jose: JOSEPrivateKey
        let signing: JOSEPrivateKey
        init() throws {
            jose = try JOSEPrivateKey.generate()
            signing = try JOSEPrivateKey.generate()
        }

        /// A Go-format package of our KDC: `offered` decides which KDC keys it carries and
        /// its `supported_crypto` (nil: the member is left out, as a Go KDC does).
        func goPackage(address: String, node: String = "edge1.example.", offered: [CryptoBackend] = [.hpke, .jose],
                       supportedMember: Bool = true, reenroll: Bool = false) -> [UInt8] {
            var members: [(String, JSONValue)] = [
                ("token", .string(String(repeating: "cd", count: 32))), ("node_id", .string(node)),
                ("kdc_hpke_pubkey", .string(offered.contains(.hpke) ? hpke.publicKey.hex : "")),
                ("kdc_jose_pubkey", .string(offered.contains(.jose) ? Base64.encode(Array(jose.publicKey.jwkJSON().utf8)) : "")),
                ("kdc_enrollment_address", .string(address)), ("control_zone", .string("kdc.example.")),
                ("kdc_signing_pubkey", .string(signing.publicKey.jwkJSON())),
                // As our KDC writes it: a Go-format package with the seed's version number.
                ("valid_until", .string("2027-01-22T08:00:00Z")), ("version", .string("2.0")),
            ]
            if supportedMember {
                members.append(("supported_crypto", .array(offered.map { .string($0.rawValue) })))
            }
            if reenroll { members.append(("reenroll", .bool(true))) }
            return Array(("# package\n" + Base64.encode(JSONValue.object(members).serialized()) + "\n").utf8)
        }

        /// The seed's format (contract item 2): plain JSON, no node ID, no SIG(0) key.
        func seedPackage(crypto: CryptoBackend, host: String = "127.0.0.1", port: JSONValue, version: String = "2.0",
                         mutate: (inout [(String, JSONValue)]) -> Void = { _ in }) throws -> [UInt8] {
            let encryptionKey: JSONValue = crypto == .hpke
                ? .string(Base64.encode(hpke.publicKey.rawRepresentation))
                : try JSONValue.parse(Array(jose.publicKey.jwkJSON().utf8))
            var members: [(String, JSONValue)] = [
                ("version", .string(version)), ("crypto", .string(crypto.rawValue)),
                ("auth_token", .string(String(repeating: "ef", count: 32))), ("kdc_encryption_key", encryptionKey),
                ("kdc_signing_key", try JSONValue.parse(Array(signing.publicKey.jwkJSON().utf8))),
                ("kdc_address", .string(host)), ("kdc_port", port), ("control_zone", .string("kdc.example.")),
                ("valid_until", .string("2027-01-22T08:00:00Z")), ("capabilities", .array([.string("jws-es256")])),
            ]
            mutate(&members)
            return JSONValue.object(members).serialized()
        }

        /// The request a node sent: HPKE Base to the KDC's key, or a JWE.
        func openRequest(_ m: DNSMessage) -> JSONValue? {
            guard let rr = m.updates.first, let chunk = try? CHUNKRecord(rdata: rr.rdata) else { return nil }
            let plain = (try? HPKECipher.open(chunk.data, with: hpke)) ?? (try? JWE.decrypt(chunk.data, with: jose))
            return plain.flatMap { try? JSONValue.parse($0, maxDepth: 4, maxSize: 65536) }
        }
    }

    /// A KDC that accepts enrollments (or refuses them while `refuse` is set), keeping each
    /// request; the answer is encrypted to the key the request announces, as our KDC does.
    final class EnrollingKDC: Sendable {
        let keys: KDCKeys
        /// What the tests set and read, shared with the server's threads.
        final class Shared: Sendable {
            let refuse = Mutex(false)
            let requests = Mutex<[JSONValue]>([])
            /// Called while the UPDATE is being answered (before the node hears the answer).
            let duringUpdate = Mutex<(@Sendable () -> Void)?>(nil)
        }
        let shared = Shared()
        let fake: FakeKDC

        init() throws {
            let keys = try KDCKeys()
            self.keys = keys
            let shared = self.shared
            fake = try FakeKDC { m in
                var answer = DNSMessage(id: m.id, opcode: .update, flags: DNSHeaderFlags(qr: true), questions: m.questions)
                guard let request = keys.openRequest(m) else {
                    answer.rcode = .formErr
                    return answer
                }
                shared.requests.withLock { $0.append(request) }
                shared.duringUpdate.withLock { $0 }?()
                if shared.refuse.withLock({ $0 }) {
                    answer.rcode = .refused
                    let text = Array(#"{"status":"error","error_message":"enrollment token validation failed: token expired"}"#.utf8)
                    if let option = try? ChunkOption(contentType: .enrollmentConfirmation, content: text).ednsOption() {
                        answer.edns = EDNS(udpPayloadSize: 1232, options: [option])
                    }
                    return answer
                }
                let confirmation = JSONValue.object([
                    ("node_id", .string("edge1.example.")), ("status", .string("success")),
                    ("kdc_hpke_pubkey", .string(keys.hpke.publicKey.hex)), ("timestamp", .string("2027-01-15T08:00:00Z")),
                ]).serialized()
                let sealed: [UInt8]?
                if let h = request["hpke_pubkey"]?.stringValue, let key = try? HPKEPublicKey(text: Array(h.utf8)) {
                    sealed = try? HPKECipher.sealAuth(confirmation, to: key, from: keys.hpke)
                } else if let j = request["jose_pubkey"]?.stringValue, let key = try? JOSEPublicKey(jwk: Array(j.utf8)) {
                    sealed = try? JWE.encrypt(confirmation, to: key)
                } else {
                    sealed = nil
                }
                guard let sealed, let option = try? ChunkOption(contentType: .enrollmentConfirmation, content: sealed).ednsOption()
                else { return nil }
                answer.edns = EDNS(udpPayloadSize: 1232, options: [option])
                return answer
            }
        }

        var address: String { fake.address.description }
    }

    /// A state directory under the temporary directory, removed by `deinit`.
    final class Root: Sendable {
        let path = NSTemporaryDirectory() + "tdnskrs-migration-" + UUID().uuidString
        var state: String { path + "/state" }
        var keys: String { path + "/keys" }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func conf() throws -> String { try String(contentsOfFile: state + "/krs.conf", encoding: .utf8) }
        func stateFiles() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []).sorted() }
        /// krs.conf's value of `key`.
        func value(_ key: String) throws -> String? {
            try conf().split(separator: "\n").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
    }

    // MARK: - supported_crypto, preferred_crypto

    @Test("settings: supported_crypto a list of hpke/jose, preferred_crypto one of them; anything else refused")
    func settings() throws {
        let root = Root()
        func parse(_ extra: [String]) throws -> KRSSettings {
            try KRSSettings(arguments: ["state_dir=\(root.state)", "key_store=none"] + extra)
        }
        let defaults = try parse([])
        #expect(defaults.supportedCrypto == [.hpke, .jose] && defaults.preferredCrypto == nil)
        let s = try parse(["supported_crypto=jose, hpke,jose", "preferred_crypto=hpke"])
        #expect(s.supportedCrypto == [.jose, .hpke] && s.preferredCrypto == .hpke)
        #expect(try parse(["preferred_crypto="]).preferredCrypto == nil, "empty: no preference")
        for bad in [["supported_crypto=rsa"], ["supported_crypto=,"], ["preferred_crypto=rsa"],
                    ["supported_crypto=hpke", "preferred_crypto=jose"], ["previous_keys_until=soon"]] {
            let e = #expect(throws: TDNSError.self, "\(bad)") { _ = try parse(bad) }
            #expect(e?.code == .config)
        }
    }

    @Test("the enrollment request: keys only for supported ∩ offered, preferred_crypto only when stated and made", arguments: [
        // (supported, preferred, offered)
        ([CryptoBackend.hpke, .jose], CryptoBackend?.none, [CryptoBackend.hpke, .jose]),
        ([.hpke, .jose], .hpke, [.hpke, .jose]),
        ([.hpke, .jose], .jose, [.hpke, .jose]),
        ([.hpke], nil, [.hpke, .jose]),
        ([.hpke], .hpke, [.hpke, .jose]),
        ([.jose], nil, [.hpke, .jose]),
        ([.jose], .jose, [.hpke, .jose]),
        ([.hpke, .jose], .jose, [.hpke]),
        ([.hpke, .jose], .hpke, [.jose]),
        ([.jose, .hpke], .hpke, [.jose]),
    ])
    func requestContents(supported: [CryptoBackend], preferred: CryptoBackend?, offered: [CryptoBackend]) throws {
        let kdc = try KDCKeys()
        let package = try EnrollmentPackage(fileContents: kdc.goPackage(address: "127.0.0.1:53", offered: offered))
        #expect(package.offeredCrypto == offered)
        let warnings = Mutex<[String]>([])
        let request = try Enrollment.prepare(package: package, notifyAddress: "127.0.0.1:5398", chunkType: .chunk, now: 1_800_000_000,
                                             supported: supported, preferred: preferred,
                                             log: { level, line in if level == .warning { warnings.withLock { $0.append(line) } } })
        let made = offered.filter { supported.contains($0) }
        #expect((request.hpke != nil) == made.contains(.hpke) && (request.jose != nil) == made.contains(.jose))
        let json = try #require(kdc.openRequest(try DNSMessage(wireEncoded: request.wire)), "the KDC opens the request")
        #expect(json["hpke_pubkey"]?.stringValue == request.hpke?.publicKey.hex)
        #expect(json["jose_pubkey"]?.stringValue == request.jose?.publicKey.jwkJSON())
        let sent = preferred.flatMap { made.contains($0) ? $0 : nil }
        #expect(json["preferred_crypto"]?.stringValue == sent?.rawValue)
        // A Go map: members sorted, capabilities unchanged.
        let keys = json.objectKeys
        #expect(keys == keys.sorted())
        #expect(json["capabilities"]?.arrayValue?.compactMap(\.stringValue) == ["jws-es256", "sig0"])
        // A preference the enrollment cannot honour is said, not sent.
        #expect(warnings.withLock { $0.contains { $0.contains("no preference sent") } } == (preferred != nil && sent == nil))
    }

    @Test("no backend in common: refused before anything is sent; a Go package (no supported_crypto) offers what it has keys for")
    func noCommonBackend() throws {
        let kdc = try KDCKeys()
        let package = try EnrollmentPackage(fileContents: kdc.goPackage(address: "127.0.0.1:53", offered: [.jose]))
        let e = #expect(throws: TDNSError.self) {
            _ = try Enrollment.prepare(package: package, notifyAddress: "127.0.0.1:5398", chunkType: .chunk, now: 0, supported: [.hpke])
        }
        #expect(e?.code == .config && e?.reason.contains("no backend in common") == true)
        let go = try EnrollmentPackage(fileContents: kdc.goPackage(address: "127.0.0.1:53", offered: [.hpke], supportedMember: false))
        #expect(go.offeredCrypto == [.hpke] && go.format == .go && !go.reenroll)
    }

    // MARK: - the seed's package format

    @Test("seed package: JSON or base64, hpke or jose; node ID from --node-id; kdc_address + kdc_port")
    func seedPackage() throws {
        let kdc = try KDCKeys()
        let hpke = try kdc.seedPackage(crypto: .hpke, port: .number("5399"))
        for text in [hpke, Array(Base64.encode(hpke).utf8)] {
            let p = try EnrollmentPackage(fileContents: text, nodeID: "Edge1.Example.")
            #expect(p.format == .seed && p.nodeID == "edge1.example." && p.controlZone == "kdc.example.")
            #expect(p.kdcAddress == "127.0.0.1:5399" && p.offeredCrypto == [.hpke] && p.kdcJOSEKey == nil)
            #expect(p.kdcHPKEKey?.hex == kdc.hpke.publicKey.hex && p.kdcSigningKey?.jwkJSON() == kdc.signing.publicKey.jwkJSON())
            #expect(p.validUntil == "2027-01-22T08:00:00Z" && p.kdcSIG0Key == nil && p.token == String(repeating: "ef", count: 32))
        }
        let hexKey = try kdc.seedPackage(crypto: .hpke, port: .number("53")) { $0[3].1 = .string(kdc.hpke.publicKey.hex) }
        #expect(try EnrollmentPackage(fileContents: hexKey, nodeID: "edge1.example.").kdcHPKEKey?.hex == kdc.hpke.publicKey.hex)
        let jose = try EnrollmentPackage(fileContents: try kdc.seedPackage(crypto: .jose, host: "2001:db8::1", port: .string("53")),
                                         nodeID: "edge1.example.")
        #expect(jose.offeredCrypto == [.jose] && jose.kdcHPKEKey == nil && jose.kdcJOSEKey?.jwkJSON() == kdc.jose.publicKey.jwkJSON())
        #expect(jose.kdcAddress == "[2001:db8::1]:53")
    }

    @Test("seed package refusals: no node ID, another version, unknown crypto, a short key, a bad port; a Go package for another node")
    func seedRefusals() throws {
        let kdc = try KDCKeys()
        func refused(_ text: [UInt8], nodeID: String? = "edge1.example.", _ code: TDNSError.Code, _ words: String) {
            let e = #expect(throws: TDNSError.self, "\(words)") { _ = try EnrollmentPackage(fileContents: text, nodeID: nodeID) }
            #expect(e?.code == code && e?.reason.contains(words) == true, "\(e?.reason ?? "")")
        }
        refused(try kdc.seedPackage(crypto: .hpke, port: .number("53")), nodeID: nil, .config, "--node-id")
        refused(try kdc.seedPackage(crypto: .hpke, port: .number("53"), version: "3.0"), .malformed, "version")
        refused(try kdc.seedPackage(crypto: .hpke, port: .number("53")) { $0[1].1 = .string("rsa") }, .malformed, "crypto")
        refused(try kdc.seedPackage(crypto: .hpke, port: .number("53")) { $0[3].1 = .string(Base64.encode([1, 2, 3])) },
                .malformed, "32-byte")
        refused(try kdc.seedPackage(crypto: .hpke, port: .number("0")), .malformed, "kdc_port")
        refused(try kdc.seedPackage(crypto: .hpke, port: .number("53")) { $0.removeAll { $0.0 == "kdc_port" } }, .malformed, "kdc_port")
        refused(try kdc.seedPackage(crypto: .jose, port: .number("53")) { $0[3].1 = .string("") }, .malformed, "kdc_encryption_key")
        refused(kdc.goPackage(address: "127.0.0.1:53"), nodeID: "edge2.example.", .config, "is for edge1.example., not edge2.example.")
    }

    @Test("enrolling with a seed package: node_id stored, NOTIFYs unverified unless kdc_sig0_pubkey= is given — and said so")
    func seedEnrollment() throws {
        let kdc = try EnrollingKDC()
        let port = JSONValue.number(String(kdc.fake.address.port))
        for sig0 in [false, true] {
            let root = Root()
            let lines = Mutex<[String]>([])
            let kdcSIG0 = try DNSSECPrivateKey.generate(algorithm: .ed25519)
            let line = KEYRecord(algorithm: 15, publicKey: kdcSIG0.dnskeyPublicKey).presentationLine(owner: try DNSName("kdc.example."))
            let extra = sig0 ? ["kdc_sig0_pubkey=\(line)"] : []
            let node = try KRSNode(arguments: ["state_dir=\(root.state)", "key_dir=\(root.keys)", "now=1800000000"] + extra,
                                   log: { _, l in lines.withLock { $0.append(l) } })
            let id = try node.enroll(package: try kdc.keys.seedPackage(crypto: .jose, port: port), notifyAddress: "127.0.0.1:5398",
                                     nodeID: "edge1.example.")
            #expect(id == "edge1.example.")
            #expect(try root.value("node_id") == "edge1.example.")
            #expect(try root.value("jose_private_key") != nil && root.value("hpke_private_key") == nil, "the seed package offers jose only")
            #expect(node.settings.requireSignature, "kdc_signing_key kept")
            #expect(node.settings.requireNotifySignature == sig0)
            let warned = lines.withLock { $0.contains { $0.contains("carries no KDC SIG(0) key") } }
            #expect(warned == !sig0)
            // A fresh start reads it all back from krs.conf.
            let again = try KRSSettings(arguments: ["state_dir=\(root.state)"])
            #expect(again.requireNotifySignature == sig0 && again.nodeID?.description == "edge1.example.")
        }
    }

    // MARK: - re-enrollment

    /// The node's public keys as the KDC last heard them.
    static func recipient(_ request: JSONValue) throws -> (hpke: HPKEPublicKey?, jose: JOSEPublicKey?) {
        (try request["hpke_pubkey"]?.stringValue.map { try HPKEPublicKey(text: Array($0.utf8)) },
         try request["jose_pubkey"]?.stringValue.map { try JOSEPublicKey(jwk: Array($0.utf8)) })
    }

    /// A signed (JWT) distribution with one roll_key for the node's key of `crypto`.
    static func distribution(_ id: String, signer: JOSEPrivateKey, crypto: TestKDC.Crypto, hpke: HPKEPublicKey?, jose: JOSEPublicKey?,
                             now: Int64) throws -> (DistributionRecords, TestKDC.DNSSECKey) {
        var t = try TestKDC()
        t.nodeID = "edge1.example."
        t.now = now
        t.hpkeRecipient = hpke
        t.joseRecipient = jose
        var o = TestKDC.Options()
        o.crypto = crypto
        o.jwtManifest = true
        o.jwsSigner = signer
        let key = try TestKDC.newKey()
        let rdata = try t.distribution(id, entries: [TestKDC.rollKey(key)], o)
        return (try DistributionRecords(distributionID: id, rdata: rdata, maxSize: 1 << 20), key)
    }

    @Test("re-enrollment HPKE → JOSE: refused without --reenroll; keys beside the old until the KDC acknowledges; either key opens in between; the first new-key distribution retires the old")
    func reenrollment() throws {
        let kdc = try EnrollingKDC()
        let root = Root()
        let clock = Mutex<Int64>(1_800_000_000)
        let args = ["state_dir=\(root.state)", "key_dir=\(root.keys)", "key_store=none"]
        let wall = WallClock { clock.withLock { $0 } }
        let node = try KRSNode(arguments: args, clock: wall)
        _ = try node.enroll(package: kdc.keys.goPackage(address: kdc.address, offered: [.hpke]), notifyAddress: "127.0.0.1:5398")
        let first = try #require(kdc.shared.requests.withLock { $0.first })
        let oldHPKE = try #require(try root.value("hpke_private_key"))
        let oldSIG0 = try #require(try root.value("sig0_private_key"))
        #expect(try root.value("jose_private_key") == nil)
        // The daemon beside it: started before the re-enrollment, never restarted.
        let running = try KRSNode(arguments: args, clock: wall)

        // Enrolled already: not without --reenroll, and nothing is sent.
        let refused = #expect(throws: TDNSError.self) {
            _ = try node.enroll(package: kdc.keys.goPackage(address: kdc.address, offered: [.jose], reenroll: true))
        }
        #expect(refused?.code == .config && refused?.reason == "already enrolled as edge1.example.; use --reenroll")
        #expect(kdc.shared.requests.withLock { $0.count } == 1)

        // A re-enrollment the KDC refuses (expired): nothing changes, the new keys are gone.
        let confBefore = try root.conf()
        let filesBefore = root.stateFiles()
        kdc.shared.refuse.withLock { $0 = true }
        let failed = #expect(throws: TDNSError.self) {
            _ = try node.enroll(package: kdc.keys.goPackage(address: kdc.address, offered: [.jose], reenroll: true), reenroll: true)
        }
        #expect(failed?.code == .dns && failed?.reason.contains("token expired") == true)
        #expect(try root.conf() == confBefore && root.stateFiles() == filesBefore)
        #expect(node.settings.hpkeKey?.publicKey.hex == first["hpke_pubkey"]?.stringValue)
        // ... and the node still receives with its old key.
        let (d0, _) = try Self.distribution("6a500000", signer: kdc.keys.signing, crypto: .hpke,
                                            hpke: try Self.recipient(first).hpke, jose: nil, now: clock.withLock { $0 })
        #expect(try node.process(d0).outcome == .applied)

        // Re-enrollment to JOSE: while the KDC answers, krs.conf still names the old key and
        // the new key files lie beside it.
        kdc.shared.refuse.withLock { $0 = false }
        let seenDuring = Mutex<(conf: String, files: [String])?>(nil)
        kdc.shared.duringUpdate.withLock { $0 = { seenDuring.withLock { $0 = ((try? root.conf()) ?? "", root.stateFiles()) } } }
        let reenrolled = try node.enroll(package: kdc.keys.goPackage(address: kdc.address, offered: [.jose], reenroll: true),
                                         reenroll: true)
        #expect(reenrolled == "edge1.example.")
        let during = try #require(seenDuring.withLock { $0 })
        #expect(during.conf == confBefore, "krs.conf switches only on the acknowledgement")
        #expect(during.files.contains { $0.hasPrefix("node.jose.") } && during.files.contains("node.hpke.privatekey"))
        let second = try #require(kdc.shared.requests.withLock { $0.last })
        #expect(second["hpke_pubkey"] == nil && second["jose_pubkey"] != nil)
        #expect(second["notify_address"]?.stringValue == "127.0.0.1:5398", "notify_listen kept from krs.conf")
        #expect(try root.value("key_store") == "none", "the setup in krs.conf is kept")
        // Switched: the new JOSE key and SIG(0) key, the old HPKE key as previous_*, 7 days.
        #expect(try root.value("previous_hpke_private_key") == oldHPKE)
        #expect(try root.value("previous_keys_until") == String(1_800_000_000 + 7 * 86400))
        #expect(try root.value("jose_private_key")?.contains("/node.jose.") == true && root.value("hpke_private_key") == nil)
        #expect(try root.value("sig0_private_key") != oldSIG0 && !FileManager.default.fileExists(atPath: oldSIG0))
        #expect(FileManager.default.fileExists(atPath: oldHPKE))
        #expect(node.settings.joseKey?.publicKey.jwkJSON() == second["jose_pubkey"]?.stringValue)

        // In between, the running daemon (which reads krs.conf again) opens both: a
        // distribution made for the old HPKE key ...
        let (old, _) = try Self.distribution("6a500001", signer: kdc.keys.signing, crypto: .hpke,
                                             hpke: try Self.recipient(first).hpke, jose: nil, now: clock.withLock { $0 })
        let r1 = try running.process(old)
        #expect(r1.outcome == .applied && r1.openedWithPreviousKey && r1.backend == .hpke)
        #expect(try root.value("previous_hpke_private_key") == oldHPKE, "an old-key distribution retires nothing")
        // ... and one made for the new JOSE key, which retires the old key.
        let (new, _) = try Self.distribution("6a500002", signer: kdc.keys.signing, crypto: .jose,
                                             hpke: nil, jose: try Self.recipient(second).jose, now: clock.withLock { $0 })
        let r2 = try running.process(new)
        #expect(r2.outcome == .applied && !r2.openedWithPreviousKey && r2.backend == .jose)
        #expect(try root.value("previous_hpke_private_key") == nil && root.value("previous_keys_until") == nil)
        #expect(!FileManager.default.fileExists(atPath: oldHPKE), "the retired key's file is removed")
        // Now an HPKE distribution is a backend mismatch.
        let (late, _) = try Self.distribution("6a500003", signer: kdc.keys.signing, crypto: .hpke,
                                              hpke: try Self.recipient(first).hpke, jose: nil, now: clock.withLock { $0 })
        let r3 = try running.process(late)
        #expect(r3.reportJSON.contains("backend mismatch: jose node received an hpke distribution"))
        let status = try JSONValue.parse(Array(running.statusJSON().utf8))
        #expect(status["crypto"]?.arrayValue?.compactMap(\.stringValue) == ["jose"])
        #expect(status["previous_keys_until"] == JSONValue.null)
    }

    @Test("re-enrollment: the previous keys end after 7 days even without a new-key distribution; --reenroll on a fresh node refused")
    func previousKeysExpire() throws {
        let kdc = try EnrollingKDC()
        let root = Root()
        let clock = Mutex<Int64>(1_800_000_000)
        let node = try KRSNode(arguments: ["state_dir=\(root.state)", "key_store=none"], clock: WallClock { clock.withLock { $0 } })
        let fresh = #expect(throws: TDNSError.self) {
            _ = try node.enroll(package: kdc.keys.goPackage(address: kdc.address), notifyAddress: "127.0.0.1:5398", reenroll: true)
        }
        #expect(fresh?.code == .config && fresh?.reason.contains("nothing to re-enroll") == true)
        _ = try node.enroll(package: kdc.keys.goPackage(address: kdc.address, offered: [.hpke]), notifyAddress: "127.0.0.1:5398")
        let first = try #require(kdc.shared.requests.withLock { $0.first })
        let oldHPKE = try #require(try root.value("hpke_private_key"))
        // HPKE → a new HPKE key.
        _ = try node.enroll(package: kdc.keys.goPackage(address: kdc.address, offered: [.hpke], reenroll: true), reenroll: true)
        #expect(try root.value("hpke_private_key") != oldHPKE && root.value("previous_hpke_private_key") == oldHPKE)
        clock.withLock { $0 += 7 * 86400 - 1 }
        let (d1, _) = try Self.distribution("6a510001", signer: kdc.keys.signing, crypto: .hpke,
                                            hpke: try Self.recipient(first).hpke, jose: nil, now: clock.withLock { $0 })
        #expect(try node.process(d1).openedWithPreviousKey)
        clock.withLock { $0 += 1 }
        let (d2, _) = try Self.distribution("6a510002", signer: kdc.keys.signing, crypto: .hpke,
                                            hpke: try Self.recipient(first).hpke, jose: nil, now: clock.withLock { $0 })
        let e = #expect(throws: TDNSError.self) { _ = try node.process(d2) }
        #expect(e?.code == .cryptoFailure, "the old key no longer opens anything")
        #expect(try root.value("previous_hpke_private_key") == nil && !FileManager.default.fileExists(atPath: oldHPKE))
    }

    @Test("a re-enrollment whose KDC does not answer (connection refused) leaves krs.conf, the files and the keys as they were")
    func reenrollmentUnanswered() throws {
        let kdc = try EnrollingKDC()
        let root = Root()
        let node = try KRSNode(arguments: ["state_dir=\(root.state)", "key_store=none", "now=1800000000"])
        _ = try node.enroll(package: kdc.keys.goPackage(address: kdc.address, offered: [.hpke]), notifyAddress: "127.0.0.1:5398")
        let conf = try root.conf()
        let files = root.stateFiles()
        let hpke = node.settings.hpkeKey?.publicKey.hex
        // A KDC that is gone: nothing listens on its port any more.
        let gone = try EnrollingKDC()
        let address = gone.address
        gone.fake.stop()
        let e = #expect(throws: TDNSError.self) {
            _ = try node.enroll(package: kdc.keys.goPackage(address: address, offered: [.jose], reenroll: true), reenroll: true)
        }
        #expect(e != nil && e?.code != .config, "it was sent, and failed on the way: \(e?.reason ?? "")")
        #expect(try root.conf() == conf && root.stateFiles() == files)
        #expect(node.settings.hpkeKey?.publicKey.hex == hpke && node.settings.joseKey == nil)
    }

    // MARK: - backend mismatch

    @Test("wrong backend: KRS_OK with one failed_keys entry, audited, recorded as processed (a final answer)", arguments: [
        (TestKDC.Crypto.hpke, "hpke_private_key=", "backend mismatch: jose node received an hpke distribution"),
        (.v1, "hpke_private_key=", "backend mismatch: jose node received an hpke distribution"),
        (.jose, "jose_private_key=", "backend mismatch: hpke node received an jose distribution"),
    ])
    func backendMismatch(crypto: TestKDC.Crypto, without: String, message: String) throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        var o = TestKDC.Options()
        o.crypto = crypto
        o.jwtManifest = true
        let receiver = try env.receiver([without])
        let records = try kdc.distribution("6a520001", entries: [TestKDC.rollKey(try TestKDC.newKey())], o)
        let result = try receiver.process(distributionID: "6a520001", records: records)
        #expect(result.reportJSON == #"{"failed_keys":[{"zone_name":"","key_id":"*","error":"\#(message)"}]}"#)
        #expect(result.failureReason == message && result.keysChanged == 0 && env.keyFiles().isEmpty)
        let audit = try String(contentsOfFile: env.stateDir + "/audit.log", encoding: .utf8)
        #expect(audit.contains(#""result":"backend-mismatch""#) && audit.contains(message))
        let again = #expect(throws: TDNSError.self) { _ = try receiver.process(distributionID: "6a520001", records: records) }
        #expect(again?.code == .replay)
    }

    @Test("wrong backend through the node: confirmed to the KDC with the report, settled (not retried), counted as failed")
    func backendMismatchConfirmed() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        var o = TestKDC.Options()
        o.jwtManifest = true
        let fake = try FakeKDC()
        try fake.serve("6a530001", try kdc.distribution("6a530001", entries: [TestKDC.rollKey(try TestKDC.newKey())], o))
        let node = try KRSNode(arguments: env.arguments(["kdc_address=\(fake.address)", "hpke_private_key="]))
        let handled = node.handle(try distID("6a530001"))
        #expect(handled.record.outcome == .installFailed && handled.record.confirmed && !handled.record.needsRetry)
        let report = try #require(fake.log.confirmations.withLock { $0.first?.report })
        #expect(report == #"{"failed_keys":[{"zone_name":"","key_id":"*","error":"backend mismatch: jose node received an hpke distribution"}]}"#)
        // A repeated NOTIFY fetches nothing.
        #expect(node.handle(try distID("6a530001")).record.outcome == .alreadyProcessed)
        let backends = try JSONValue.parse(Array(node.statusJSON().utf8))["backends"]
        #expect(backends?["hpke"]?["failed"]?.int64Value == 1 && backends?["hpke"]?["processed"]?.int64Value == 0)
    }

    // MARK: - counters and the log line

    @Test("counters by backend in the status, and the seed's log line per distribution processed")
    func counters() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let lines = Mutex<[String]>([])
        let node = try KRSNode(arguments: env.arguments(), log: { _, l in lines.withLock { $0.append(l) } })
        let empty = try JSONValue.parse(Array(node.statusJSON().utf8))["backends"]
        #expect(empty?["jose"]?["processing_ms"]?["median"]?.int64Value == 0 && empty?["hpke"]?["processed"]?.int64Value == 0)
        var n = 0
        for crypto in [TestKDC.Crypto.hpke, .hpke, .v1, .jose] {
            n += 1
            let id = "6a54000\(n)"
            var o = TestKDC.Options()
            o.crypto = crypto
            let records = try DistributionRecords(distributionID: id, rdata: try kdc.distribution(id, entries: [TestKDC.ping()], o), maxSize: 1 << 20)
            _ = try node.process(records)
        }
        // A refusal once the backend is known (tampered JOSE ciphertext) counts as failed.
        var bad = TestKDC.Options()
        bad.crypto = .jose
        bad.mutateCiphertext = { ct in ct[ct.count - 3] ^= 1 }
        let badRecords = try DistributionRecords(distributionID: "6a540009", rdata: try kdc.distribution("6a540009", entries: [TestKDC.ping()], bad), maxSize: 1 << 20)
        #expect(throws: TDNSError.self) { _ = try node.process(badRecords) }
        let backends = try #require(try JSONValue.parse(Array(node.statusJSON().utf8))["backends"])
        #expect(backends["hpke"]?["processed"]?.int64Value == 3 && backends["hpke"]?["failed"]?.int64Value == 0)
        #expect(backends["jose"]?["processed"]?.int64Value == 1 && backends["jose"]?["failed"]?.int64Value == 1)
        for b in ["hpke", "jose"] {
            let ms = try #require(backends[b]?["processing_ms"])
            #expect((ms["median"]?.int64Value ?? -1) >= 0 && (ms["p95"]?.int64Value ?? -1) >= (ms["median"]?.int64Value ?? 0))
        }
        let logged = lines.withLock { $0 }
        #expect(logged.contains { $0.range(of: #"^Distribution 6a540001 processed successfully \(backend: hpke, duration: \d+ms\)$"#, options: .regularExpression) != nil })
        #expect(logged.contains { $0.range(of: #"^Distribution 6a540004 processed successfully \(backend: jose, duration: \d+ms\)$"#, options: .regularExpression) != nil })
        #expect(!logged.contains { $0.contains("6a540009 processed successfully") })
    }

    @Test("percentiles: nearest rank over the kept durations")
    func percentiles() {
        var c = BackendCounters()
        #expect(c.percentile(50) == 0 && c.percentile(95) == 0)
        for ms in [40, 10, 30, 20, 100] { c.add(success: true, milliseconds: ms) }
        #expect(c.percentile(50) == 30 && c.percentile(95) == 100 && c.processed == 5)
        for _ in 0..<(BackendCounters.kept + 10) { c.add(success: false, milliseconds: 1) }
        #expect(c.durations.count == BackendCounters.kept && c.percentile(95) == 1 && c.failed == BackendCounters.kept + 10)
    }
}
