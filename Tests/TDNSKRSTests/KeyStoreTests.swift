import Foundation
import Testing
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSWire

@testable import TDNSKRS

/// The key stores' semantics (PROTOCOL §10.3 and §19): rolls retire, deletions remove, and a
/// server that refuses the new keys leaves everything as it was and is reported as failed keys.
@Suite("Key stores")
struct KeyStoreTests {
    private func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    private func base(_ k: TestKDC.DNSSECKey) -> String {
        "K\(k.zone)+\(String(format: "%03d", Int(k.key.algorithm.rawValue)))+\(String(format: "%05d", Int(k.tag)))"
    }

    @Test("a new ZSK retires the zone's other ZSKs, a new KSK the other KSKs; old_key_id retires that key too")
    func rollRetires() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let ksk = try TestKDC.newKey(ksk: true), zsk = try TestKDC.newKey(), other = try TestKDC.newKey(zone: "example.org.")
        _ = try env.receiver().process(distributionID: "5a000001", records: try kdc.distribution("5a000001", entries: [
            TestKDC.rollKey(ksk), TestKDC.rollKey(zsk), TestKDC.rollKey(other),
        ]))
        let zsk2 = try TestKDC.newKey()
        let r = try env.receiver().process(distributionID: "5a000002", records: try kdc.distribution("5a000002", entries: [TestKDC.rollKey(zsk2)]))
        #expect(r.keysChanged == 2, "installed + retired")
        let stamp = DNSTime.format(kdc.now + 5)
        #expect(text("\(env.keyDir)/\(base(zsk)).private").contains("\nInactive: \(stamp)\n"))
        #expect(text("\(env.keyDir)/\(base(zsk)).key").contains("; Inactive: \(stamp)\n"))
        #expect(!text("\(env.keyDir)/\(base(zsk)).private").contains("Delete:"), "published until a delete_key (no retire_time)")
        #expect(!text("\(env.keyDir)/\(base(ksk)).private").contains("Inactive"), "a ZSK roll leaves the KSK alone")
        #expect(!text("\(env.keyDir)/\(base(other)).private").contains("Inactive"), "other zones are not touched")
        #expect(!text("\(env.keyDir)/\(base(zsk2)).private").contains("Inactive"))
        // The retired key still parses as a BIND private key (dnssec-signzone reads it).
        #expect(throws: Never.self) { try DNSSECPrivateKey(bindPrivateKey: Array(text("\(env.keyDir)/\(base(zsk)).private").utf8)) }
        let audit = text(env.stateDir + "/audit.log")
        #expect(audit.contains(#""result":"retired","zone":"example.com.","key_tag":\#(zsk.tag),"#))

        // A new KSK retires the old KSK; old_key_id names the (active) new ZSK to retire as well.
        let ksk2 = try TestKDC.newKey(ksk: true)
        guard case .object(var entry) = TestKDC.rollKey(ksk2) else { Issue.record("entry"); return }
        entry.append(("metadata", .object([("old_key_id", .string(String(zsk2.tag))), ("retire_old_key", .bool(true))])))
        _ = try env.receiver().process(distributionID: "5a000003", records: try kdc.distribution("5a000003", entries: [.object(entry)]))
        #expect(text("\(env.keyDir)/\(base(ksk)).private").contains("Inactive: "))
        #expect(text("\(env.keyDir)/\(base(zsk2)).private").contains("Inactive: "))
        #expect(!text("\(env.keyDir)/\(base(ksk2)).private").contains("Inactive: "))
    }

    @Test("retire_time in the manifest becomes the retired key's Delete time")
    func retireTime() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let zsk = try TestKDC.newKey(), zsk2 = try TestKDC.newKey()
        _ = try env.receiver().process(distributionID: "5a000011", records: try kdc.distribution("5a000011", entries: [TestKDC.rollKey(zsk)]))
        var o = TestKDC.Options()
        o.retireTime = "720h0m0s"
        _ = try env.receiver().process(distributionID: "5a000012", records: try kdc.distribution("5a000012", entries: [TestKDC.rollKey(zsk2)], o))
        #expect(text("\(env.keyDir)/\(base(zsk)).private").contains("Delete: \(DNSTime.format(kdc.now + 5 + 720 * 3600))"))
    }

    @Test("bind: delete_key sets Delete = now (named drops the DNSKEY), the files go an hour later")
    func bindDelete() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let zsk = try TestKDC.newKey()
        _ = try env.receiver().process(distributionID: "5a000021", records: try kdc.distribution("5a000021", entries: [TestKDC.rollKey(zsk)]))
        let r = try env.receiver().process(distributionID: "5a000022", records: try kdc.distribution("5a000022", entries: [
            TestKDC.deleteKey(zone: zsk.zone, tag: zsk.tag), TestKDC.deleteKey(zone: zsk.zone, tag: 1),
        ]))
        #expect(r.reportJSON.contains(#""key_id":"\#(zsk.tag)""#) && r.reportJSON.contains(#""key_id":"1""#), "not found counts as success")
        let stamp = DNSTime.format(kdc.now + 5)
        #expect(text("\(env.keyDir)/\(base(zsk)).private").contains("Delete: \(stamp)"))
        #expect(text("\(env.keyDir)/\(base(zsk)).private").contains("Inactive: \(stamp)"))
        // Housekeeping at a later start removes them once the grace period is over.
        try env.receiver(["now=\(kdc.now + 5 + 1800)"]).housekeeping()
        #expect(env.keyFiles().count == 2)
        try env.receiver(["now=\(kdc.now + 5 + 3601 + 10)"]).housekeeping()
        #expect(env.keyFiles().isEmpty)
    }

    @Test("a failing rndc: key directory byte-identical, failed_keys reported, ping still successful, audited")
    func serverRefuses() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let zsk = try TestKDC.newKey()
        _ = try env.receiver().process(distributionID: "5a000031", records: try kdc.distribution("5a000031", entries: [TestKDC.rollKey(zsk)]))
        let before = env.snapshot().filter { $0.key.hasPrefix(env.keyDir) }
        let zsk2 = try TestKDC.newKey()
        let receiver = try env.receiver(["rndc=/bin/false"])
        let r = try receiver.process(distributionID: "5a000032", records: try kdc.distribution("5a000032", entries: [
            TestKDC.rollKey(zsk2), TestKDC.deleteKey(zone: zsk.zone, tag: zsk.tag), TestKDC.ping(),
        ]))
        #expect(r.failureReason == "false loadkeys example.com.: exit 1")
        #expect(r.keysChanged == 0)
        #expect(r.reportJSON == #"{"successful_keys":[{"zone_name":"ping","key_id":"op-2"}],"failed_keys":[{"zone_name":"example.com.","key_id":"\#(zsk2.tag)","error":"false loadkeys example.com.: exit 1"},{"zone_name":"example.com.","key_id":"\#(zsk.tag)","error":"false loadkeys example.com.: exit 1"}]}"#)
        #expect(env.snapshot().filter { $0.key.hasPrefix(env.keyDir) } == before, "the old ZSK is neither retired nor deleted, the new one not there")
        #expect(text(env.stateDir + "/audit.log").contains(#""result":"install-failed""#))
        // The outcome is final: the same distribution again is a replay.
        let again = #expect(throws: TDNSError.self) {
            try receiver.process(distributionID: "5a000032", records: try kdc.distribution("5a000032", entries: [TestKDC.ping()]))
        }
        #expect(again?.code == .replay)
    }

    @Test("nsd: the real dnssec-signzone signs the zone into signed_dir; the retired ZSK is published but signs nothing")
    func nsdSigns() throws {
        let signer = "/usr/bin/dnssec-signzone"
        try #require(FileManager.default.isExecutableFile(atPath: signer), "bind9-utils provides dnssec-signzone")
        // dnssec-signzone signs at the real time and skips keys published in its future: the
        // fixture's clock (Publish = Activate = the receiver's now) is set to the real one.
        var kdc = try TestKDC()
        kdc.now = Int64(Date().timeIntervalSince1970)
        let env = try ReceiverEnv(kdc)
        let zones = env.root + "/zones"
        try FileManager.default.createDirectory(atPath: zones, withIntermediateDirectories: true)
        try """
            $TTL 300
            @   IN SOA ns1 hostmaster 1 3600 600 86400 300
                IN NS  ns1
            ns1 IN A   127.0.0.1

            """.write(toFile: zones + "/example.com.zone", atomically: true, encoding: .utf8)
        var o = TestKDC.Options()
        o.timestamp = kdc.now - 20
        let args = ["key_store=nsd", "zone_dir=\(zones)", "nsd_control=none", "signer=\(signer)", "now=\(kdc.now - 15)"]
        let ksk = try TestKDC.newKey(ksk: true), zsk = try TestKDC.newKey()
        // The KDC sends a zone's KSK and ZSK separately: the KSK alone signs everything (-z).
        let first = try env.receiver(args).process(distributionID: "5a000040", records: try kdc.distribution("5a000040", entries: [
            TestKDC.rollKey(ksk),
        ], o))
        #expect(first.failureReason == nil)
        let serial1 = NSDKeyStore.soaSerial(zones + "/example.com.zone.signed")
        _ = try env.receiver(args).process(distributionID: "5a000041", records: try kdc.distribution("5a000041", entries: [
            TestKDC.rollKey(zsk),
        ], o))
        let serial2 = NSDKeyStore.soaSerial(zones + "/example.com.zone.signed")
        #expect(serial1 != nil && serial2 != nil && serial2! > serial1!, "every signing has a new serial: \(String(describing: serial1)) → \(String(describing: serial2))")
        // The signed zone with dnssec-signzone's parenthesized continuation lines joined.
        func signed() -> String {
            var depth = 0
            return String(text(zones + "/example.com.zone.signed").map { c -> Character in
                if c == "(" { depth += 1 } else if c == ")" { depth -= 1 }
                return depth > 0 && c == "\n" ? " " : c
            })
        }
        func rrsigTags(_ type: String) -> Set<String> {
            Set(signed().split(separator: "\n").compactMap { line -> String? in
                let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard let i = f.firstIndex(of: "RRSIG"), f.count > i + 8, f[i + 1] == type else { return nil }
                return String(f[i + 7 + (f[i + 5] == "(" ? 1 : 0)])
            })
        }
        #expect(rrsigTags("SOA") == [String(zsk.tag)])
        #expect(rrsigTags("DNSKEY") == [String(ksk.tag)])
        let zsk2 = try TestKDC.newKey()
        let r2 = try env.receiver(args).process(distributionID: "5a000042", records: try kdc.distribution("5a000042", entries: [TestKDC.rollKey(zsk2)], o))
        #expect(r2.failureReason == nil)
        #expect(rrsigTags("SOA") == [String(zsk2.tag)])
        #expect(signed().contains(zsk.key.dnskeyPublicKey.base64Prefix), "retired ZSK still published")
        _ = try env.receiver(args).process(distributionID: "5a000043", records: try kdc.distribution("5a000043", entries: [
            TestKDC.deleteKey(zone: zsk.zone, tag: zsk.tag),
        ], o))
        #expect(!signed().contains(zsk.key.dnskeyPublicKey.base64Prefix), "deleted ZSK gone")
        #expect(!env.keyFiles().contains { $0.hasPrefix(base(zsk)) })
        #expect(rrsigTags("SOA") == [String(zsk2.tag)])

        // A signer that fails: the signed zone and the key files stay as they were.
        let before = env.snapshot().filter { $0.key.hasPrefix(env.keyDir) }
        let signedBefore = text(zones + "/example.com.zone.signed")
        let r = try env.receiver(["key_store=nsd", "zone_dir=\(zones)", "nsd_control=none", "signer=/bin/false", "now=\(kdc.now - 15)"])
            .process(distributionID: "5a000044", records: try kdc.distribution("5a000044", entries: [TestKDC.rollKey(try TestKDC.newKey())], o))
        #expect(r.failureReason?.hasPrefix("false") == true)
        #expect(env.snapshot().filter { $0.key.hasPrefix(env.keyDir) } == before)
        #expect(text(zones + "/example.com.zone.signed") == signedBefore)

        // The zone's last keys deleted: NSD serves the unsigned zone again.
        let last = try env.receiver(args).process(distributionID: "5a000045", records: try kdc.distribution("5a000045", entries: [
            TestKDC.deleteKey(zone: ksk.zone, tag: ksk.tag), TestKDC.deleteKey(zone: zsk2.zone, tag: zsk2.tag),
        ], o))
        #expect(last.failureReason == nil)
        #expect(text(zones + "/example.com.zone.signed") == text(zones + "/example.com.zone"))
    }

    @Test("a host's defaults (key?=value): below argv and the config file, above what enrollment stored")
    func hostDefaults() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        try FileManager.default.createDirectory(atPath: env.stateDir, withIntermediateDirectories: true)
        try "notify_listen=127.0.0.1:5399\nkey_store=bind\n".write(toFile: env.stateDir + "/krs.conf", atomically: true, encoding: .utf8)
        let defaults = ["key_store?=knot", "notify_listen?=none"]
        // Over krs.conf:
        let s1 = try KRSSettings(arguments: defaults + env.arguments())
        #expect(s1.keyStore == .knot && s1.notifyListen == nil)
        // Under argv, wherever the default stands:
        let s2 = try KRSSettings(arguments: env.arguments(["key_store=none"]) + defaults)
        #expect(s2.keyStore == KRSSettings.KeyStoreKind.none && s2.notifyListen == nil)
        // Under the config file:
        let file = env.root + "/krs-extra.conf"
        try "key_store = nsd\nzone_dir=\(env.root)\n".write(toFile: file, atomically: true, encoding: .utf8)
        let s3 = try KRSSettings(arguments: defaults + env.arguments(["config=\(file)"]))
        #expect(s3.keyStore == .nsd)
        // Only in argv: a config file cannot hold defaults.
        try "key_store?=knot\n".write(toFile: file, atomically: true, encoding: .utf8)
        let e = #expect(throws: TDNSError.self) { try KRSSettings(arguments: env.arguments(["config=\(file)"])) }
        #expect(e?.reason == "key_store?: unknown setting")
    }

    @Test("settings of the server tools", arguments: [
        (["key_store=knot"], nil),
        (["key_store=nsd"], "zone_dir: required with key_store=nsd (the unsigned zone files)"),
        (["rndc=rndc"], #"rndc: "rndc" is not an absolute path (or none)"#),
        (["key_store=knot", "knotc=/usr/sbin/knotc", "knot_conf=/etc/knot/knot.conf", "command_timeout=5"], nil),
        (["command_timeout=0"], #"command_timeout: "0" is not 1–300 seconds"#),
        (["key_store=sqlite"], #"key_store: "sqlite" is not bind, knot, nsd or none"#),
        (["notify_listen=none"], nil),
    ] as [([String], String?)])
    func toolSettings(args: [String], error: String?) throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        if let error {
            let e = #expect(throws: TDNSError.self) { try KRSSettings(arguments: env.arguments(args)) }
            #expect(e?.code == .config)
            #expect(e?.reason == error)
        } else {
            let s = try KRSSettings(arguments: env.arguments(args))
            if args.contains("notify_listen=none") { #expect(s.notifyListen == nil) }
            if args.contains("command_timeout=5") { #expect(s.server.commandTimeout == 5 && s.server.knotConf == "/etc/knot/knot.conf") }
        }
    }
}

private extension Array where Element == UInt8 {
    /// The first 24 base64 characters of a public key: enough to find its DNSKEY line.
    var base64Prefix: String { String(Base64.encode(self).prefix(24)) }
}
