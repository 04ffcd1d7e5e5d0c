import Foundation
import Testing
import TDNSCore
import TDNSTestSupport

@testable import TDNSKRS

/// The Knot store and a zone served unsigned until its first keys (README "Zones before their
/// first keys"): a KSK alone is installed but reported in `failed_keys`; the first complete
/// key set turns `dnssec-signing` on through a knotc configuration transaction; every start
/// turns it on again. keymgr and knotc are test doubles that record how they were called; the
/// real knotd runs in Tests/knot/run.sh.
@Suite("Knot store: signing before and after the first keys")
struct KnotSigningTests {
    /// Test doubles: keymgr accepts everything; knotc answers `conf-read` of a
    /// `dnssec-signing` item from a file that `conf-set … on` + `conf-commit` write.
    private func tools(_ env: ReceiverEnv) throws -> (args: [String], calls: String, signing: String) {
        let calls = env.root + "/calls", signing = env.root + "/signing"
        let keymgr = env.root + "/keymgr", knotc = env.root + "/knotc"
        try "#!/bin/sh\necho \"keymgr $*\" >>\(calls)\necho OK\n".write(toFile: keymgr, atomically: true, encoding: .utf8)
        try """
            #!/bin/sh
            echo "knotc $*" >>\(calls)
            case "$*" in
            *conf-read*dnssec-signing*) item=$(echo "$*" | sed 's/.*conf-read //'); echo "$item = $(cat \(signing) 2>/dev/null || echo off)" ;;
            *conf-set*dnssec-signing*on*) : >\(signing).pending ;;
            *conf-commit*) [ -e \(signing).pending ] && echo on >\(signing) && rm -f \(signing).pending ;;
            esac
            echo OK

            """.write(toFile: knotc, atomically: true, encoding: .utf8)
        for tool in [keymgr, knotc] { chmod(tool, 0o755) }
        return (["key_store=knot", "keymgr=\(keymgr)", "knotc=\(knotc)", "knot_conf=/etc/knot/test.conf"], calls, signing)
    }

    private func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    @Test("a KSK alone: installed, reported in failed_keys and audited not-signing; signing stays off")
    func kskAlone() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let t = try tools(env)
        let ksk = try TestKDC.newKey(ksk: true)
        let r = try env.receiver(t.args).process(distributionID: "6b000001", records: try kdc.distribution("6b000001", entries: [
            TestKDC.rollKey(ksk), TestKDC.ping(),
        ]))
        let reason = "installed, but Knot cannot sign example.com. until it has an active KSK and ZSK"
        #expect(r.reportJSON == #"{"successful_keys":[{"zone_name":"ping","key_id":"op-1"}],"failed_keys":[{"zone_name":"example.com.","key_id":"\#(ksk.tag)","error":"\#(reason)"}]}"#)
        #expect(r.outcome == .applied && r.keysInstalled == 1, "the key is installed, not rolled back")
        #expect(env.keyFiles().count == 2)
        #expect(text(t.calls).contains("import-bind"))
        #expect(!text(t.calls).contains("conf-set") && !text(t.calls).contains("zone-keys-load"), "nothing to sign with yet")
        #expect(text(env.stateDir + "/audit.log").contains(#""result":"not-signing","zone":"example.com.","reason":"\#(reason)""#))
    }

    @Test("the first KSK + ZSK turn dnssec-signing on (conf-begin, conf-set, conf-commit), no zone-keys-load; the next roll loads keys")
    func firstCompleteKeySet() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let t = try tools(env)
        let ksk = try TestKDC.newKey(ksk: true), zsk = try TestKDC.newKey()
        let r = try env.receiver(t.args).process(distributionID: "6b000011", records: try kdc.distribution("6b000011", entries: [
            TestKDC.rollKey(ksk), TestKDC.rollKey(zsk),
        ]))
        #expect(!r.reportJSON.contains("failed_keys"))
        let calls = text(t.calls).split(separator: "\n").map(String.init).filter { $0.hasPrefix("knotc") }
        #expect(calls.contains { $0.hasSuffix("conf-read zone[example.com.].dnssec-signing") })
        #expect(calls.contains { $0.hasSuffix("conf-begin") })
        #expect(calls.contains { $0.hasSuffix("conf-set zone[example.com.].dnssec-signing on") })
        #expect(calls.contains { $0.hasSuffix("conf-commit") })
        #expect(calls.allSatisfy { $0.contains("-c /etc/knot/test.conf") }, "knot_conf= goes to every knotc")
        #expect(!calls.contains { $0.contains("zone-keys-load") }, "knotd signs by itself once signing is on")
        #expect(text(t.signing).hasPrefix("on"))

        // Signing is on now: a ZSK roll is a plain zone-keys-load, no configuration change.
        try "".write(toFile: t.calls, atomically: true, encoding: .utf8)
        let zsk2 = try TestKDC.newKey()
        _ = try env.receiver(t.args).process(distributionID: "6b000012", records: try kdc.distribution("6b000012", entries: [TestKDC.rollKey(zsk2)]))
        #expect(text(t.calls).contains("zone-keys-load example.com."))
        #expect(!text(t.calls).contains("conf-begin"))
    }

    @Test("at start, a zone with a complete key set whose signing is off again (knotc reload of a text knot.conf) is turned on, and said so")
    func housekeepingTurnsSigningOn() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let t = try tools(env)
        let ksk = try TestKDC.newKey(ksk: true), zsk = try TestKDC.newKey()
        _ = try env.receiver(t.args).process(distributionID: "6b000021", records: try kdc.distribution("6b000021", entries: [
            TestKDC.rollKey(ksk), TestKDC.rollKey(zsk),
        ]))
        try "off\n".write(toFile: t.signing, atomically: true, encoding: .utf8)  // knot.conf read again
        try "".write(toFile: t.calls, atomically: true, encoding: .utf8)
        let lines = LogLines()
        let receiver = try KeyReceiver(settings: KRSSettings(arguments: env.arguments(t.args)), log: { lines.append($1) })
        receiver.housekeeping()
        #expect(text(t.calls).contains("conf-set zone[example.com.].dnssec-signing on"))
        #expect(text(t.signing).hasPrefix("on"))
        #expect(lines.all.contains { $0.contains("example.com.: dnssec-signing turned on in knotd's running configuration") })

        // Already on: the next start only reads the configuration.
        try "".write(toFile: t.calls, atomically: true, encoding: .utf8)
        receiver.housekeeping()
        #expect(!text(t.calls).contains("conf-begin") && text(t.calls).contains("conf-read"))
    }
}

/// Log lines collected from the receiver's log callback (which may run on any thread).
private final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
