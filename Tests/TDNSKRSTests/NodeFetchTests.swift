import Foundation
import Synchronization
import Testing
import TDNSCore
import TDNSCrypto
import TDNSTestSupport
import TDNSTransport
import TDNSWire

@testable import TDNSKRS

/// The node against a KDC on 127.0.0.1 that a test controls (FakeKDC): the manifest is
/// authenticated before any data chunk is requested, failures are retried on the timer,
/// storage failures reach the KDC, and the configured CHUNK type is used throughout.
@Suite("Node: fetch, retry, confirm")
struct NodeFetchTests {
    static func node(_ env: ReceiverEnv, _ kdc: FakeKDC, _ extra: [String] = []) throws -> KRSNode {
        try KRSNode(arguments: env.arguments(["kdc_address=\(kdc.address)"] + extra))
    }

    static func notify(_ node: KRSNode, _ id: String) throws -> RCode {
        let wire = try TDNSMessages.notify(id: 5, distributionID: try distID(id), controlZone: try DNSName("kdc.example."), chunkType: .chunk).serialize()
        return try DNSMessage(wireEncoded: try #require(node.handleNotify(wire, source: "127.0.0.1"))).rcode
    }

    @Test("require_signature=yes: a Format 1 manifest (JWS-wrapped ciphertext) is refused before any data chunk is fetched")
    func format1BeforeChunks() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        var o = TestKDC.Options()
        o.signJWS = true
        o.forceChunked = true
        o.chunkSize = 200
        let records = try kdc.distribution("6a400001", entries: [TestKDC.rollKey(try TestKDC.newKey())], o)
        #expect(records.count > 2)
        let fake = try FakeKDC()
        try fake.serve("6a400001", records)
        let node = try Self.node(env, fake, ["require_signature=yes"])
        let e = #expect(throws: TDNSError.self) { try node.fetchAndConfirm("6a400001") }
        #expect(e?.code == .unsigned)
        #expect(fake.manifestQueries("6a400001") == 1)
        #expect(fake.dataChunkQueries("6a400001") == 0, "no data chunk was asked for")
        #expect(env.keyFiles().isEmpty)
        let audit = try String(contentsOfFile: env.stateDir + "/audit.log", encoding: .utf8)
        #expect(audit.contains(#""code":"unsigned""#))
    }

    @Test("a manifest announcing 20,000 chunks of 64 KiB is refused before any data chunk (max_distribution_size)")
    func hugeChunkCount() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        var o = TestKDC.Options()
        o.forceChunked = true
        o.mutateManifest = { m in
            if let i = m.firstIndex(where: { $0.0 == "chunk_count" }) { m[i].1 = .integer(20000) }
            if let i = m.firstIndex(where: { $0.0 == "chunk_size" }) { m[i].1 = .integer(65535) }
        }
        let fake = try FakeKDC()
        try fake.serve("6a400002", try kdc.distribution("6a400002", entries: [TestKDC.ping()], o))
        let node = try Self.node(env, fake)
        let e = #expect(throws: TDNSError.self) { try node.fetchAndConfirm("6a400002") }
        #expect(e?.code == .tooBig)
        #expect(fake.dataChunkQueries("6a400002") == 0)
    }

    @Test("chunk_rrtype=65015 everywhere: JWT chunked distribution fetched, installed, confirmed with 65015")
    func chunkTypeAndJWT() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        var o = TestKDC.Options()
        o.jwtManifest = true
        o.forceChunked = true
        o.chunkSize = 200
        let key = try TestKDC.newKey()
        let records = try kdc.distribution("6a400003", entries: [TestKDC.rollKey(key)], o)
        let fake = try FakeKDC(chunkType: .chunkLegacy)
        try fake.serve("6a400003", records)
        // With the default type the Go-built KDC answers FORMERR: a fetch failure.
        let wrongType = try Self.node(env, fake, ["require_signature=yes"])
        #expect(wrongType.handle(try distID("6a400003")).record.outcome == .fetchFailed)
        let node = try Self.node(env, fake, ["require_signature=yes", "chunk_rrtype=65015"])
        let result = try node.fetchAndConfirm("6a400003")
        #expect(result.signed && result.keysInstalled == 1)
        #expect(fake.dataChunkQueries("6a400003") == records.count - 1)
        let confirmations = fake.log.confirmations.withLock { $0 }
        #expect(confirmations.count == 1 && confirmations[0].id == "6a400003")
        #expect(confirmations[0].report == #"{"successful_keys":[{"zone_name":"example.com.","key_id":"\#(key.tag)"}]}"#)
    }

    @Test("key_dir unwritable: nothing installed, the KDC hears every key in failed_keys with storage: <reason>")
    func storageFailureReported() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let key = try TestKDC.newKey()
        let fake = try FakeKDC()
        try fake.serve("6a400004", try kdc.distribution("6a400004", entries: [TestKDC.rollKey(key)]))
        let node = try Self.node(env, fake)
        try FileManager.default.removeItem(atPath: env.keyDir)
        try Data("a file, not a directory".utf8).write(to: URL(fileURLWithPath: env.keyDir))
        let handled = node.handle(try distID("6a400004"))
        #expect(handled.record.outcome == .installFailed && handled.record.confirmed)
        let report = try JSONValue.parse(Array(try #require(fake.log.confirmations.withLock { $0.first?.report }).utf8))
        let failed = try #require(report["failed_keys"]?.arrayValue)
        #expect(failed.count == 1 && failed[0]["key_id"]?.stringValue == String(key.tag))
        #expect(failed[0]["error"]?.stringValue?.hasPrefix("storage: ") == true)
        let status = try JSONValue.parse(Array(node.statusJSON().utf8))
        #expect(status["distributions"]?.arrayValue?.first?["result"]?.stringValue == "install failed")
    }

    @Test("a failed fetch is retried on the timer, and at once on a new NOTIFY (no longer ignored); then confirmed and forgotten")
    func retryAfterFailure() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let fake = try FakeKDC()
        try fake.serve("6a400005", try kdc.distribution("6a400005", entries: [TestKDC.ping()]))
        let node = try Self.node(env, fake)
        #expect(try Self.notify(node, "6a400005") == .noError)
        // Every quick attempt gets a malformed (empty) answer.
        fake.log.brokenAnswers.withLock { $0 = NodeFetchTests.quickAttempts }
        let line = try #require(node.intake.next())
        let failed = node.handle(line.id)
        #expect(failed.record.outcome == .fetchFailed)
        node.settle(line.id, failed)
        #expect(node.intake.next() == nil, "waiting 5 s for the timer")
        #expect(try String(contentsOfFile: env.stateDir + "/pending", encoding: .utf8).hasPrefix("6a400005 \(kdc.now + 5) 1\n"))
        // The KDC NOTIFYs again: answered NOERROR, and due at once.
        #expect(try Self.notify(node, "6a400005") == .noError)
        let again = try #require(node.intake.next())
        let done = node.handle(again.id)
        #expect(done.record.outcome == .installed && done.record.confirmed)
        node.settle(again.id, done)
        #expect(node.intake.count == 0)
        #expect(try String(contentsOfFile: env.stateDir + "/pending", encoding: .utf8).isEmpty)
        // Confirmed: a repeated NOTIFY fetches nothing — neither now nor after a restart.
        let before = fake.log.queries.withLock { $0.count }
        #expect(try Self.notify(node, "6a400005") == .noError)
        #expect(node.intake.count == 0)
        let restarted = try Self.node(env, fake)
        #expect(try Self.notify(restarted, "6a400005") == .noError)
        let handled = restarted.handle(try #require(restarted.intake.next()).id)
        #expect(handled.record.outcome == .alreadyProcessed)
        #expect(fake.log.queries.withLock { $0.count } == before, "nothing fetched")
    }

    static let quickAttempts = Fetcher.attempts

    @Test("the worker: start, a host-delivered NOTIFY, fetched, installed, confirmed; stop")
    func worker() throws {
        let kdc = try TestKDC()
        let env = try ReceiverEnv(kdc)
        let key = try TestKDC.newKey()
        let fake = try FakeKDC()
        try fake.serve("6a400006", try kdc.distribution("6a400006", entries: [TestKDC.rollKey(key)]))
        let node = try Self.node(env, fake, ["notify_listen=none"])
        try node.start()
        defer { node.stop() }
        #expect(try Self.notify(node, "6a400006") == .noError)
        var waited = 0.0
        while fake.log.confirmations.withLock({ $0.isEmpty }) && waited < 20 {
            usleep(50_000)
            waited += 0.05
        }
        #expect(fake.log.confirmations.withLock { $0.first?.id } == "6a400006")
        #expect(env.keyFiles().count == 2)
        // Settled after the confirmation: the pending file empties.
        waited = 0
        while node.intake.count > 0 && waited < 5 { usleep(50_000); waited += 0.05 }
        #expect(node.intake.count == 0)
    }
}
