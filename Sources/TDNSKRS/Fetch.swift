import TDNSCore
import TDNSTransport
import TDNSWire

/// What fetching a distribution brought back (PROTOCOL §5.1 steps 3–5).
enum FetchResult: Sendable {
    /// The manifest, authenticated before any data chunk was requested, and the data chunks.
    case fetched(ReceivedDistribution)
    /// NXDOMAIN or SERVFAIL for the manifest: the KDC has no such distribution for this node
    /// (a Go KDC NOTIFYs every node, PROTOCOL §13). Dropped, not retried.
    case notForUs(String)
    /// The manifest was refused (not bound while signatures are required, not ours, stale,
    /// too large, …): no data chunk was fetched. Dropped, not retried — a KDC that means it
    /// NOTIFYs again.
    case refused(TDNSError)
}

/// The fetch step: the manifest over TCP, authenticated by the receiver at once (contract §2:
/// a Format 1 manifest with `require_signature=yes`, a manifest for another node or ID, a stale
/// one or one announcing more than `max_distribution_size` ends the fetch here); then the data
/// chunks, pipelined on one TCP connection, each at most the manifest's `chunk_size`. A few
/// quick attempts; what still fails is thrown (network, timeout, malformed answer) for the
/// retry timer. The node's stop token ends every wait within 50 ms.
struct Fetcher: Sendable {
    /// How long one DNS exchange may take, and how often a failed fetch or confirmation is
    /// tried before the retry timer takes over (contract §4).
    static let exchangeTimeout = 5.0
    static let attempts = 3

    let kdc: SocketAddress
    let nodeID: DNSName
    let controlZone: DNSName
    let chunkType: RRType
    let stop: StopToken

    /// The fetcher of an enrolled node; nil without `kdc_address`, `node_id` or `control_zone`.
    init?(settings: KRSSettings, stop: StopToken) {
        guard let kdc = settings.kdcAddress, let nodeID = settings.nodeID, let zone = settings.controlZone else { return nil }
        self.kdc = kdc
        self.nodeID = nodeID
        self.controlZone = zone
        self.chunkType = settings.chunkType
        self.stop = stop
    }

    /// Fetches one distribution, its manifest authenticated by `receiver` before any data
    /// chunk is asked for.
    func fetch(_ id: DistributionID, for receiver: KeyReceiver) throws(TDNSError) -> FetchResult {
        var lastError = TDNSError(.network, "no attempt made")
        for attempt in 1...Self.attempts {
            if stop.isStopped { throw .network("stopping") }
            do throws(TDNSError) {
                let manifestName = try TDNSMessages.chunkQueryName(sequence: 0, nodeID: nodeID, distributionID: id, controlZone: controlZone)
                let query = TDNSMessages.chunkQuery(id: UInt16.random(in: 1...UInt16.max), name: manifestName, chunkType: chunkType)
                let answer = try DNSMessage(wireEncoded: try DNSClient.exchange(
                    try query.serialize(), server: kdc, over: .tcp, timeout: Self.exchangeTimeout, stop: stop))
                guard let manifestRecord = try TDNSMessages.chunkAnswer(answer, to: query) else {
                    if answer.rcode == .nxDomain || answer.rcode == .servFail {
                        return .notForUs("the KDC has no distribution \(id) for this node (\(answer.rcode))")
                    }
                    // FORMERR, REFUSED, NOTIMP…: the KDC did not understand the query — a
                    // CHUNK type other than its build's (chunk_rrtype, PROTOCOL §21) answers
                    // FORMERR. A failure to retry, not a distribution to drop.
                    throw TDNSError.dns("the KDC answered \(answer.rcode) to the manifest query (CHUNK type \(chunkType.rawValue): is chunk_rrtype the KDC's?)")
                }
                guard manifestRecord.sequence == 0 else {
                    throw TDNSError.malformed("the manifest answer has sequence \(manifestRecord.sequence)")
                }
                // Authenticated once, here, before a single data chunk is asked for.
                let manifest: Manifest
                do {
                    manifest = try receiver.authenticateManifest(manifestRecord, for: id)
                } catch {
                    return .refused(error)
                }
                var chunks: [CHUNKRecord] = []
                // An inline payload beside chunk_count > 0 is refused by the receiver; nothing to fetch.
                if manifest.chunkCount > 0 && manifest.inlinePayload == nil {
                    chunks = try fetchChunks(count: manifest.chunkCount, chunkSize: manifest.chunkSize ?? Manifest.maxChunkData, id: id)
                }
                return .fetched(ReceivedDistribution(id: id, manifest: manifest, dataChunks: chunks))
            } catch {
                lastError = error
                if attempt < Self.attempts { stop.sleep(Double(1 << (attempt - 1))) }
            }
        }
        throw lastError
    }

    /// Data chunks 1…count over one pipelined TCP connection.
    private func fetchChunks(count: Int, chunkSize: Int, id: DistributionID) throws(TDNSError) -> [CHUNKRecord] {
        var queries: [DNSMessage] = []
        var usedIDs = Set<UInt16>()
        for seq in 1...count {
            var qid = UInt16.random(in: 1...UInt16.max)
            while usedIDs.contains(qid) { qid = UInt16.random(in: 1...UInt16.max) }
            usedIDs.insert(qid)
            let name = try TDNSMessages.chunkQueryName(sequence: UInt16(seq), nodeID: nodeID, distributionID: id, controlZone: controlZone)
            queries.append(TDNSMessages.chunkQuery(id: qid, name: name, chunkType: chunkType))
        }
        let client = try PipelinedTCPClient(server: kdc, timeout: Self.exchangeTimeout, stop: stop)
        defer { client.close() }
        var wire: [[UInt8]] = []
        for q in queries { wire.append(try q.serialize()) }
        let answers = try client.exchange(wire)
        var chunks: [CHUNKRecord] = []
        chunks.reserveCapacity(count)
        for (q, a) in zip(queries, answers) {
            guard let chunk = try TDNSMessages.chunkAnswer(try DNSMessage(wireEncoded: a), to: q) else {
                throw TDNSError.dns("data chunk answered with an error")
            }
            guard chunk.data.count <= chunkSize else {
                throw TDNSError.malformed("data chunk \(chunk.sequence) holds \(chunk.data.count) bytes, the manifest's chunk_size is \(chunkSize)")
            }
            chunks.append(chunk)
        }
        return chunks
    }
}
