import Foundation
import Synchronization
import Testing
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSWire

@testable import TDNSKRS

/// Contract §4: a NOTIFY is answered REFUSED unless its distribution is queued and recorded
/// in state_dir/pending first; the queue and each source's share are bounded; the pending
/// file is bounded at load and never loses an update between threads.
@Suite("NOTIFY intake and the pending record")
struct IntakeTests {
    static let zone = try! DNSName("kdc.example.")

    static func notify(_ id: String, msgID: UInt16 = 7, zone: DNSName = IntakeTests.zone) throws -> DNSMessage {
        try TDNSMessages.notify(id: msgID, distributionID: try distID(id), controlZone: zone, chunkType: .chunk)
    }

    static func rcode(_ answer: [UInt8]?) throws -> RCode {
        try DNSMessage(wireEncoded: try #require(answer)).rcode
    }

    static func pendingLines(_ env: ReceiverEnv) -> [String] {
        ((try? String(contentsOfFile: env.stateDir + "/pending", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    // MARK: - answers

    @Test("answers: NOERROR only for <id>.<control zone>, recorded in state_dir/pending before the answer")
    func answers() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let node = try KRSNode(arguments: env.arguments())
        // A NOTIFY for a distribution: NOERROR, and the pending file already names it.
        let ok = node.handleNotify(try Self.notify("6a310001").serialize(), source: "192.0.2.1")
        #expect(try Self.rcode(ok) == .noError)
        let lines = Self.pendingLines(env)
        #expect(lines.count == 1 && lines[0].hasPrefix("6a310001 \(kdc.now + 5) 0"), "\(lines)")
        // The same again: NOERROR, no second entry.
        #expect(try Self.rcode(node.handleNotify(try Self.notify("6a310001", msgID: 8).serialize(), source: "192.0.2.1")) == .noError)
        #expect(Self.pendingLines(env).count == 1 && node.intake.count == 1)

        // Not below the control zone, the zone itself, a label that is no distribution ID,
        // another opcode: REFUSED, nothing queued.
        var outside = try Self.notify("6a310002")
        outside.questions[0].name = try DNSName("6a310002.other.example.")
        var apex = try Self.notify("6a310003")
        apex.questions[0].name = Self.zone
        var notAnID = try Self.notify("6a310004")
        notAnID.questions[0].name = try DNSName("www.kdc.example.")
        let query = TDNSMessages.chunkQuery(id: 9, name: try DNSName("krs1.example.6a310005.kdc.example."), chunkType: .chunk)
        for m in [outside, apex, notAnID, query] {
            #expect(try Self.rcode(node.handleNotify(try m.serialize(), source: "192.0.2.1")) == .refused, "\(m.questions)")
        }
        #expect(node.intake.count == 1 && Self.pendingLines(env).count == 1)
        // Class CH: FORMERR. A response: no answer at all.
        var chaos = try Self.notify("6a310006")
        chaos.questions[0].rrClass = .ch
        #expect(try Self.rcode(node.handleNotify(try chaos.serialize(), source: "192.0.2.1")) == .formErr)
        var response = try Self.notify("6a310007")
        response.flags.qr = true
        #expect(node.handleNotify(try response.serialize(), source: "192.0.2.1") == nil)
        #expect(node.intake.count == 1)
        // Status shows the queue and the refusals.
        let status = try JSONValue.parse(Array(node.statusJSON().utf8))
        #expect(status["pending"]?.arrayValue?.count == 1)
        #expect(status["counters"]?["notifies_refused"]?.int64Value == 5)
    }

    @Test("bounds: 16 per source, 256 in all → REFUSED; a duplicate stays NOERROR")
    func bounds() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let node = try KRSNode(arguments: env.arguments())
        func send(_ n: Int, from source: String) throws -> RCode {
            try Self.rcode(node.handleNotify(try Self.notify(String(format: "6a32%04x", n)).serialize(), source: source))
        }
        for n in 0..<16 { #expect(try send(n, from: "192.0.2.1") == .noError) }
        #expect(try send(16, from: "192.0.2.1") == .refused, "the 17th from one source")
        #expect(try send(0, from: "192.0.2.1") == .noError, "a duplicate is not a new entry")
        // Host-delivered NOTIFYs (krs_handle_notify) share one source.
        for n in 100..<116 { #expect(try Self.rcode(node.handleNotify(try Self.notify(String(format: "6a32%04x", n)).serialize())) == .noError) }
        #expect(try Self.rcode(node.handleNotify(try Self.notify("6a32ffff").serialize())) == .refused)
        // Fill to 256 from other sources; the 257th is refused whatever its source.
        var n = 200
        var source = 2
        while node.intake.count < NotifyIntake.maxQueued {
            for _ in 0..<16 where node.intake.count < NotifyIntake.maxQueued {
                #expect(try send(n, from: "192.0.2.\(source)") == .noError)
                n += 1
            }
            source += 1
        }
        #expect(try send(n, from: "198.51.100.1") == .refused)
        #expect(Self.pendingLines(env).count == 256)
        #expect(node.intake.count == 256)
    }

    @Test("SIG(0) on NOTIFYs: required once kdc_sig0_pubkey is set; good → NOERROR, missing/foreign/wrong signer → REFUSED")
    func sig0() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let kdcKey = try DNSSECPrivateKey.generate(algorithm: .ed25519)
        let keyLine = KEYRecord(algorithm: 15, publicKey: kdcKey.dnskeyPublicKey).presentationLine(owner: Self.zone)
        let node = try KRSNode(arguments: env.arguments(["kdc_sig0_pubkey=\(keyLine)"]))
        #expect(node.settings.requireNotifySignature)
        let t = kdc.now + 5
        let good = try SIG0Signatures.sign(try Self.notify("6a330001"), with: kdcKey, signerName: Self.zone, now: t)
        #expect(try Self.rcode(node.handleNotify(good, source: "192.0.2.1")) == .noError)
        let unsigned = try Self.notify("6a330002").serialize()
        let foreign = try SIG0Signatures.sign(try Self.notify("6a330003"), with: try DNSSECPrivateKey.generate(algorithm: .ed25519), signerName: Self.zone, now: t)
        let wrongSigner = try SIG0Signatures.sign(try Self.notify("6a330004"), with: kdcKey, signerName: try DNSName("krs1.example."), now: t)
        let expired = try SIG0Signatures.sign(try Self.notify("6a330005"), with: kdcKey, signerName: Self.zone, now: t - 7200)
        var tampered = try SIG0Signatures.sign(try Self.notify("6a330006"), with: kdcKey, signerName: Self.zone, now: t)
        tampered[13] ^= 0x01  // inside the QNAME: another distribution ID
        for (name, wire) in [("unsigned", unsigned), ("foreign key", foreign), ("wrong signer", wrongSigner), ("expired", expired), ("tampered", tampered)] {
            let answer = node.handleNotify(wire, source: "192.0.2.1")
            #expect(try Self.rcode(answer) == .refused, "\(name)")
        }
        #expect(node.intake.ids.map(\.text) == ["6a330001"], "nothing refused was queued")
        // require_notify_signature=no: unsigned NOTIFYs are queued again (a legacy KDC).
        let lax = try KRSNode(arguments: env.arguments(["kdc_sig0_pubkey=\(keyLine)", "require_notify_signature=no", "state_dir=\(env.root)/lax"]))
        #expect(try Self.rcode(lax.handleNotify(unsigned, source: "192.0.2.1")) == .noError)
    }

    @Test("settings: kdc_sig0_pubkey inline or as a file; require_notify_signature defaults and errors")
    func sig0Settings() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let key = try DNSSECPrivateKey.generate(algorithm: .ed25519)
        let line = KEYRecord(algorithm: 15, publicKey: key.dnskeyPublicKey).presentationLine(owner: Self.zone)
        let path = env.root + "/kdc.sig0.pubkey"
        try ("; the KDC's SIG(0) key\n" + line + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let fromFile = try KRSSettings(arguments: env.arguments(["kdc_sig0_pubkey=\(path)"]))
        #expect(fromFile.kdcSIG0Key?.publicKey == key.dnskeyPublicKey && fromFile.requireNotifySignature)
        #expect(try KRSSettings(arguments: env.arguments()).requireNotifySignature == false)
        for (extra, needle) in [
            (["require_notify_signature=yes"], "require_notify_signature"), (["require_notify_signature=maybe"], "require_notify_signature"),
            (["kdc_sig0_pubkey=/nonexistent/key"], "kdc_sig0_pubkey"), (["kdc_sig0_pubkey=kdc.example. 3600 IN KEY 256 3 8 AwEAAQ=="], "kdc_sig0_pubkey"),
        ] {
            let e = #expect(throws: TDNSError.self) { try KRSSettings(arguments: env.arguments(extra)) }
            #expect(e?.code == .config && e?.reason.hasPrefix(needle) == true, "\(e?.reason ?? "")")
        }
    }

    // MARK: - the pending file

    @Test("pending file: <id> <first_seen> <attempts>; invalid lines ignored; the old bare-ID format read")
    func pendingFormat() throws {
        let dir = NSTemporaryDirectory() + "tdnskrs-pending-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        6a340001 1800000000 2
        6a340002
        garbage line here
        ../../etc 1800000000 0
        6a340003 notanumber 1
        6a340001 1800000001 0
        6A340004 1800000002 0

        """.write(toFile: dir + "/pending", atomically: true, encoding: .utf8)
        let store = PendingStore(directory: dir)
        let lines = try store.read(now: 1_800_000_100)
        #expect(lines == [
            PendingLine(id: try distID("6a340001"), firstSeen: 1_800_000_000, attempts: 2),
            PendingLine(id: try distID("6a340002"), firstSeen: 1_800_000_100, attempts: 0),
            PendingLine(id: try distID("6a340004"), firstSeen: 1_800_000_002, attempts: 0),
        ])
        let removed = try distID("6a340002")
        try store.update(now: 1_800_000_100) { $0.removeAll { $0.id == removed } }
        #expect(try String(contentsOfFile: dir + "/pending", encoding: .utf8) == "6a340001 1800000000 2\n6a340004 1800000002 0\n")
        let attrs = try FileManager.default.attributesOfItem(atPath: dir + "/pending")
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
    }

    @Test("at load: older than 24 h and beyond the 256 newest dropped, with an audit line each")
    func loadBounds() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let now = kdc.now + 5
        try FileManager.default.createDirectory(atPath: env.stateDir, withIntermediateDirectories: true)
        var text = ""
        for i in 0..<20 { text += String(format: "6a35%04x %d 3\n", i, now - 90_000 - Int64(i)) }     // > 24 h
        for i in 0..<280 { text += String(format: "6a36%04x %d 0\n", i, now - 280 + Int64(i)) }    // fresh, oldest first
        try text.write(toFile: env.stateDir + "/pending", atomically: true, encoding: .utf8)
        let node = try KRSNode(arguments: env.arguments())
        node.loadPending()
        let lines = Self.pendingLines(env)
        #expect(lines.count == 256)
        #expect(!lines.contains { $0.hasPrefix("6a35") }, "no entry older than 24 h")
        #expect(lines.first?.hasPrefix(String(format: "6a36%04x", 24)) == true, "the 24 oldest fresh ones dropped")
        #expect(node.intake.count == 256)
        let audit = try String(contentsOfFile: env.stateDir + "/audit.log", encoding: .utf8).split(separator: "\n")
        #expect(audit.filter { $0.contains(#""result":"dropped""#) }.count == 44)
        #expect(audit.contains { $0.contains("announced more than 24 h ago") })
        #expect(audit.contains { $0.contains("more than 256 distributions pending") })
    }

    @Test("one lock for every thread: concurrent NOTIFYs and finishes lose no update of the pending file")
    func concurrency() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        // Two nodes on one state directory (a host reloading), eight threads each way.
        let a = try KRSNode(arguments: env.arguments())
        let b = try KRSNode(arguments: env.arguments())
        let accepted = Mutex<Set<String>>([])
        DispatchQueue.concurrentPerform(iterations: 16) { t in
            let node = t % 2 == 0 ? a : b
            for i in 0..<15 {
                let id = String(format: "6a37%02x%02x", t, i)
                // A source per NOTIFY: the per-source share is not what is tested here.
                let answer = node.handleNotify((try? Self.notify(id).serialize()) ?? [], source: "10.0.\(t).\(i)")
                if (try? Self.rcode(answer)) == .noError { _ = accepted.withLock { $0.insert(id) } }
            }
        }
        let all = accepted.withLock { $0 }
        #expect(all.count == 240)
        var onDisk = Set(Self.pendingLines(env).compactMap { $0.split(separator: " ").first.map(String.init) })
        #expect(onDisk == all, "every accepted NOTIFY is in the file, nothing else")
        // Finish half of them from many threads while the other node accepts more.
        let finished = Array(all.sorted().prefix(120))
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for (i, id) in finished.enumerated() where i % 8 == t {
                guard let did = DistributionID(id) else { continue }
                try? (a.intake.contains(did) ? a : b).intake.finish(did, remember: true, now: kdc.now)
            }
            _ = b.handleNotify((try? Self.notify(String(format: "6a38%04x", t)).serialize()) ?? [], source: "10.9.9.\(t)")
        }
        onDisk = Set(Self.pendingLines(env).compactMap { $0.split(separator: " ").first.map(String.init) })
        let expected = all.subtracting(finished).union((0..<8).map { String(format: "6a38%04x", $0) })
        #expect(onDisk == expected)
    }

    // MARK: - retries

    @Test("retry delays: 5, 10, 20, 40, 80, 160, 300, 300 s")
    func delays() {
        #expect((1...9).map { NotifyIntake.retryDelay(afterFailures: $0) } == [5, 10, 20, 40, 80, 160, 300, 300, 300])
    }

    @Test("a failed fetch waits for its timer; a new NOTIFY retries at once; after 24 h it is dropped")
    func retryTimer() throws {
        let dir = NSTemporaryDirectory() + "tdnskrs-retry-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clock = Mutex<Double>(1000)
        let intake = NotifyIntake(directory: dir, monotonic: { clock.withLock { $0 } })
        let t0: Int64 = 1_800_000_000
        let first = try distID("6a390001"), second = try distID("6a390002"), third = try distID("6a390003")
        #expect(intake.offer(first, source: "192.0.2.1", now: t0) == .queued)
        #expect(intake.next()?.id == first)
        #expect(intake.next() == nil, "in flight")
        #expect(try intake.retry(first, now: t0 + 1) == .scheduled(5))
        #expect(intake.next() == nil, "waiting for its timer")
        clock.withLock { $0 += 5 }
        #expect(intake.next()?.attempts == 1)
        #expect(try intake.retry(first, now: t0 + 7) == .scheduled(10))
        #expect(try PendingStore(directory: dir).read(now: t0) == [PendingLine(id: first, firstSeen: t0, attempts: 2)])
        // A NOTIFY for it again (the KDC re-NOTIFYs): NOERROR and due now, not in 10 s.
        #expect(intake.offer(first, source: "192.0.2.1", now: t0 + 8) == .duplicate)
        #expect(intake.next()?.id == first)
        // 24 hours after its first NOTIFY it is dropped.
        #expect(try intake.retry(first, now: t0 + 86_401) == .dropped)
        #expect(try intake.retry(first, now: t0 + 86_402) == .notQueued)
        #expect(intake.count == 0)
        #expect(try PendingStore(directory: dir).read(now: t0).isEmpty)
        // Confirmed ones are answered without a fetch when NOTIFYed again.
        #expect(intake.offer(second, source: "192.0.2.1", now: t0) == .queued)
        try intake.finish(second, remember: true, now: t0)
        #expect(intake.offer(second, source: "192.0.2.1", now: t0) == .alreadyDone)
        // Refused ones are not remembered: a new NOTIFY queues them again.
        #expect(intake.offer(third, source: "192.0.2.1", now: t0) == .queued)
        try intake.finish(third, remember: false, now: t0)
        #expect(intake.offer(third, source: "192.0.2.1", now: t0) == .queued)
    }
}
