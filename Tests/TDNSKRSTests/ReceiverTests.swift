import Foundation
import Testing
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSWire

@testable import TDNSKRS

@Suite("Distribution pipeline")
struct ReceiverTests {
    @Test("the Go KDC's distribution (vectors/distribution.json) installs its key")
    func goVector() throws {
        let file = try VectorFiles.load("distribution.json")
        let dist = try #require(try file.objects("distributions").first)
        let record = try #require(try dist.objects("records").first)
        let manifestText = try record.string("data_text")
        let timestamp = try #require(try JSONValue.parse(Array(manifestText.utf8))["metadata"]?["timestamp"]?.int64Value)
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let settings = try KRSSettings(arguments: [
            "node_id=\(try file.string("node_id"))", "control_zone=\(try file.string("control_zone"))",
            "state_dir=\(env.stateDir)", "key_dir=\(env.keyDir)",
            "hpke_private_key=\(try dist.string("recipient_private_key"))", "now=\(timestamp + 30)",
        ])
        let receiver = try KeyReceiver(settings: settings)
        let result = try receiver.process(distributionID: try dist.string("distribution_id"), records: [try hexBytes(record.string("rdata_hex"))])
        #expect(result.reportJSON == #"{"successful_keys":[{"zone_name":"example.com.","key_id":"23719"}]}"#)
        #expect(result.signed == false)
        #expect(env.keyFiles() == ["Kexample.com.+013+23719.key", "Kexample.com.+013+23719.private"])
        let keyText = try String(contentsOfFile: env.keyDir + "/Kexample.com.+013+23719.key", encoding: .utf8)
        let info = try file.object("plaintext_info")
        let dnskey = try info.string("dnskey_rr").split(separator: "\t").last.map(String.init) ?? ""
        #expect(keyText.contains(dnskey), "the .key file carries the distributed DNSKEY")
        let attrs = try FileManager.default.attributesOfItem(atPath: env.keyDir + "/Kexample.com.+013+23719.private")
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        // Processing it again is a replay.
        let again = #expect(throws: TDNSError.self) {
            try receiver.process(distributionID: try dist.string("distribution_id"), records: [try hexBytes(record.string("rdata_hex"))])
        }
        #expect(again?.code == .replay)
    }

    @Test("HPKE, JOSE and v1, inline and chunked, in any order", arguments: [
        (TestKDC.Crypto.hpke, false), (.hpke, true), (.jose, false), (.jose, true), (.v1, true),
    ])
    func backends(crypto: TestKDC.Crypto, chunked: Bool) throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let ksk = try TestKDC.newKey(ksk: true)
        let zsk = try TestKDC.newKey(algorithm: .ed25519)
        var o = TestKDC.Options()
        o.crypto = crypto
        o.forceChunked = chunked
        o.chunkSize = 200
        var records = try kdc.distribution("6a300001", entries: [TestKDC.rollKey(ksk), TestKDC.rollKey(zsk), TestKDC.ping()], o)
        records.reverse()
        if chunked { records.append(records[0]) }  // an identical duplicate is tolerated
        let result = try env.receiver().process(distributionID: "6a300001", records: records)
        #expect(result.reportJSON == #"{"successful_keys":[{"zone_name":"example.com.","key_id":"\#(ksk.tag)"},{"zone_name":"example.com.","key_id":"\#(zsk.tag)"},{"zone_name":"ping","key_id":"op-2"}]}"#)
        #expect(env.keyFiles().count == 4)
    }

    @Test("signed distributions: JWT manifests, with or without a JWS around the ciphertext", arguments: [
        (false, true), (true, true),
    ])
    func signed(jws: Bool, jwt: Bool) throws {
        let kdc = try TestKDC()
        var o = TestKDC.Options()
        o.signJWS = jws
        o.jwtManifest = jwt
        let entries = [TestKDC.rollKey(try TestKDC.newKey())]
        // Accepted with the right key and require_signature=yes.
        let env = try ReceiverEnv(kdc)
        let result = try env.receiver(["require_signature=yes"]).process(distributionID: "6a300002", records: try kdc.distribution("6a300002", entries: entries, o))
        #expect(result.signed)
        #expect(env.keyFiles().count == 2)
        // Refused when the receiver trusts another KDC key.
        let other = try JOSEPrivateKey.generate()
        let env2 = try ReceiverEnv(kdc)
        let refused = #expect(throws: TDNSError.self) {
            try env2.receiver(["require_signature=yes", "kdc_signing_pubkey=\(other.publicKey.jwkJSON())"])
                .process(distributionID: "6a300003", records: try kdc.distribution("6a300003", entries: entries, o))
        }
        #expect(refused?.code == .authentication)
        #expect(env2.keyFiles().isEmpty)
    }

    @Test("signature stripped: refused when signatures are required")
    func stripped() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        var o = TestKDC.Options()
        o.signJWS = true
        // Strip the JWS: keep only its payload, the bare ciphertext, as an attacker could.
        o.mutateCiphertext = { ct in
            let parts = ct.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
            ct = (try? Base64URL.decode(parts[1])) ?? []
        }
        let records = try kdc.distribution("6a300004", entries: [TestKDC.rollKey(try TestKDC.newKey())], o)
        let e = #expect(throws: TDNSError.self) { try env.receiver(["require_signature=yes"]).process(distributionID: "6a300004", records: records) }
        #expect(e?.code == .unsigned)
        #expect(env.keyFiles().isEmpty)
        // The same distribution is accepted as legacy when signatures are not required.
        #expect(try env.receiver(["require_signature=no"]).process(distributionID: "6a300004", records: records).signed == false)
        #expect(env.keyFiles().count == 2)
    }

    @Test("delete_key marks the key deleted (BIND: Delete = now); unknown keys count as deleted")
    func deleteKey() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let k = try TestKDC.newKey()
        _ = try env.receiver().process(distributionID: "6a300005", records: try kdc.distribution("6a300005", entries: [TestKDC.rollKey(k)]))
        #expect(env.keyFiles().count == 2)
        let result = try env.receiver().process(distributionID: "6a300006", records: try kdc.distribution("6a300006", entries: [
            TestKDC.deleteKey(zone: "example.com.", tag: k.tag), TestKDC.deleteKey(zone: "example.org.", tag: 1),
        ]))
        let privateFile = env.keyDir + "/" + (env.keyFiles().first { $0.hasSuffix(".private") } ?? "")
        #expect((try? String(contentsOfFile: privateFile, encoding: .utf8))?.contains("\nDelete: ") == true)
        #expect(result.reportJSON.contains(#""key_id":"\#(k.tag)""#) && result.reportJSON.contains(#""key_id":"1""#))
        #expect(result.keysChanged == 2)
    }

    @Test("node_operations stores the component list")
    func components() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        var o = TestKDC.Options()
        o.content = "node_operations"
        let plaintext = Array(#"[{"component_id":"sign_edge_full"},{"component_id":"sign_kdc"}]"#.utf8)
        let result = try env.receiver().process(distributionID: "6a300007", records: try kdc.distribution("6a300007", plaintext: plaintext, o))
        #expect(result.reportKind == .componentStatus)
        #expect(result.reportJSON == #"{"successful_components":[{"component_id":"sign_edge_full"},{"component_id":"sign_kdc"}]}"#)
        let stored = try String(contentsOfFile: env.stateDir + "/components.json", encoding: .utf8)
        #expect(stored.contains("sign_edge_full"))
    }

    @Test("the audit log records installs and refusals, never key material")
    func audit() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let k = try TestKDC.newKey()
        let records = try kdc.distribution("6a300008", entries: [TestKDC.rollKey(k)])
        _ = try env.receiver().process(distributionID: "6a300008", records: records)
        _ = try? env.receiver().process(distributionID: "6a300008", records: records)
        let log = try String(contentsOfFile: env.stateDir + "/audit.log", encoding: .utf8)
        let lines = log.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].contains(#""result":"installed""#) && lines[0].contains(#""key_tag":\#(k.tag)"#))
        #expect(lines[1].contains(#""result":"refused""#) && lines[1].contains("replay"))
        #expect(!log.contains("PRIVATE") && !log.contains(Base64.encode(k.key.pkcs8PEM()).prefix(40)))
    }

    @Test("settings: unknown and malformed settings are named")
    func settings() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        for (extra, needle) in [
            (["colour=blue"], "colour"), (["node_id=edge1"], "node_id"), (["require_signature=maybe"], "require_signature"),
            (["now=yesterday"], "now"), (["chunk_rrtype=1"], "chunk_rrtype"), (["max_skew=soon"], "max_skew"),
            (["hpke_private_key=/nonexistent/key"], "hpke_private_key"), (["key_store=lmdb"], "key_store"),
            (["require_signature=yes", "kdc_signing_pubkey="], "require_signature"), (["noequals"], "noequals"),
        ] {
            let e = #expect(throws: TDNSError.self) { try KRSSettings(arguments: env.arguments(extra)) }
            #expect(e?.code == .config)
            #expect(e?.reason.contains(needle) == true, "\(e?.reason ?? "") names \(needle)")
        }
        // config= file, overridden by argv.
        let path = env.root + "/krs.conf"
        try (env.arguments().joined(separator: "\n") + "\n# comment\nmax_skew=5m\n").write(toFile: path, atomically: true, encoding: .utf8)
        let s = try KRSSettings(arguments: ["config=\(path)", "max_skew=10"])
        #expect(s.maxSkew == 10)
        #expect(s.requireSignature == false)
    }

    @Test("Go durations", arguments: [("5m0s", 300), ("720h0m0s", 2_592_000), ("1.5h", 5400), ("300ms", 0), ("90s", 90), ("0", 0)])
    func durations(text: String, seconds: Int64) throws {
        #expect(try GoDuration.seconds(text) == seconds)
    }
}
