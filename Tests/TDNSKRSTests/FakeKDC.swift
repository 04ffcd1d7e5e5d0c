import Foundation
import Synchronization
import TDNSCore
import TDNSTransport
import TDNSWire

/// A KDC on 127.0.0.1 (UDP and TCP, an ephemeral port) that serves fixed CHUNK records and
/// remembers every query, confirmation and UPDATE — for the node's fetch, confirmation and
/// enrollment tests. It can be as hostile as a test makes its records.
final class FakeKDC: Sendable {
    /// What the handler reads and records; shared with the server's threads.
    final class Log: Sendable {
        /// Lowercase QNAME → RDATA.
        let records: Mutex<[String: [UInt8]]>
        /// Lowercase QNAMEs of the CHUNK queries, in arrival order.
        let queries = Mutex<[String]>([])
        /// Confirmation NOTIFYs: the distribution ID (first label) and the report JSON.
        let confirmations = Mutex<[Confirmation]>([])
        let updates = Mutex<[DNSMessage]>([])
        /// While positive, CHUNK queries get an empty NOERROR answer (a malformed answer for
        /// the node: a fetch failure), and it counts down.
        let brokenAnswers = Mutex(0)
        init(_ records: [String: [UInt8]]) { self.records = Mutex(records) }
    }

    struct Confirmation: Sendable {
        var id: String
        var report: String
    }

    private let server: DNSServer
    let log: Log

    var address: SocketAddress { server.boundAddress }

    /// - Parameter onUpdate: the answer to an UPDATE (enrollment); nil answers nothing.
    /// - Parameter chunkType: the CHUNK type this KDC was built with; queries and
    ///   confirmations of the other type are answered FORMERR, as the Go KDC does (§21).
    init(chunkType: RRType = .chunk, records: [String: [UInt8]] = [:],
         onUpdate: @escaping @Sendable (DNSMessage) -> DNSMessage? = { _ in nil }) throws {
        let log = Log(records)
        self.log = log
        server = try DNSServer(listen: try SocketAddress("127.0.0.1:0"), udp: true, tcp: true) { request, _, _ in
            guard let m = try? DNSMessage(wireEncoded: request), let q = m.questions.first else { return nil }
            var response = DNSMessage(id: m.id, opcode: m.opcode, flags: DNSHeaderFlags(qr: true, aa: true), questions: [q])
            switch m.opcode {
            case .query:
                let name = q.name.description.lowercased()
                log.queries.withLock { $0.append(name) }
                if q.type != chunkType {
                    response.rcode = .formErr
                } else if log.brokenAnswers.withLock({ n in n > 0 ? { n -= 1; return true }() : false }) {
                    break
                } else if let rdata = log.records.withLock({ $0[name] }) {
                    response.answers = [ResourceRecord(name: q.name, type: q.type, rrClass: .in, ttl: 300, rdata: rdata)]
                } else {
                    response.rcode = .nxDomain
                }
            case .notify:
                guard q.type == chunkType else {
                    response.rcode = .formErr
                    break
                }
                let id = String(q.name.description.split(separator: ".").first ?? "")
                let report = (try? m.edns?.chunkOption()?.contentParts()).map { String(decoding: $0.content, as: UTF8.self) } ?? ""
                log.confirmations.withLock { $0.append(Confirmation(id: id, report: report)) }
            case .update:
                log.updates.withLock { $0.append(m) }
                guard let answer = onUpdate(m) else { return nil }
                return try? answer.serialize()
            default:
                response.rcode = .notImp
            }
            return try? response.serialize()
        }
        try server.start()
    }

    deinit { server.stop() }

    func stop() { server.stop() }

    /// Serves a distribution's records (manifest first) for `nodeID` under `controlZone`.
    func serve(_ id: String, _ rdata: [[UInt8]], nodeID: String = "krs1.example.", controlZone: String = "kdc.example.") throws {
        let node = try DNSName(nodeID)
        let zone = try DNSName(controlZone)
        var map: [String: [UInt8]] = [:]
        for (i, r) in rdata.enumerated() {
            let name = try TDNSMessages.chunkQueryName(sequence: UInt16(i), nodeID: node, distributionID: try distID(id), controlZone: zone)
            map[name.description.lowercased()] = r
        }
        log.records.withLock { $0.merge(map) { _, new in new } }
    }

    /// The data chunk queries (first label an index ≥ 1) for distribution `id`.
    func dataChunkQueries(_ id: String) -> Int {
        log.queries.withLock { $0.filter { $0.contains(".\(id).") && Int($0.split(separator: ".").first ?? "") ?? 0 >= 1 }.count }
    }

    func manifestQueries(_ id: String) -> Int {
        log.queries.withLock { $0.filter { $0.hasPrefix("krs1.example.\(id).") || $0.hasPrefix("0.krs1.example.\(id).") }.count }
    }
}
