import TDNSCore
import TDNSWire

/// The CHUNK records of one distribution as a host hands them over (`krs_process_distribution`):
/// each RDATA parsed once, at the C boundary, and the manifest (sequence 0) told apart from the
/// data chunks (PROTOCOL §2.4). The receiver authenticates the manifest next
/// (``KeyReceiver/process(_:)-(DistributionRecords)``), exactly as the fetcher does with the
/// manifest it fetched.
public struct DistributionRecords: Sendable {
    public let id: DistributionID
    public let manifestRecord: CHUNKRecord
    /// Sequence 1…N, in any order; identical duplicates are tolerated by the reassembly.
    public let dataChunks: [CHUNKRecord]

    /// Separates the manifest from the data chunks.
    ///
    /// - Throws: `.malformed` without a manifest or with two different ones; `.tooBig` for
    ///   more than ``KeyReceiver/maxRecords`` records.
    public init(id: DistributionID, records: [CHUNKRecord]) throws(TDNSError) {
        guard !records.isEmpty else { throw .malformed("no CHUNK records given") }
        guard records.count <= KeyReceiver.maxRecords else { throw .tooBig("more than \(KeyReceiver.maxRecords) CHUNK records") }
        var manifestRecord: CHUNKRecord? = nil
        var dataChunks: [CHUNKRecord] = []
        for chunk in records {
            if chunk.sequence == 0 {
                if let existing = manifestRecord, existing != chunk { throw .malformed("two different manifests (sequence 0)") }
                manifestRecord = chunk
            } else {
                dataChunks.append(chunk)
            }
        }
        guard let manifestRecord else { throw .malformed("no manifest (CHUNK sequence 0) among the records") }
        self.id = id
        self.manifestRecord = manifestRecord
        self.dataChunks = dataChunks
    }

    /// Parses a distribution ID and CHUNK RDATAs (the C API's input), each once. The bytes
    /// given are capped at `maxSize` plus a little per record for the CHUNK headers before
    /// anything is parsed.
    ///
    /// - Throws: `.malformed` for an ID that is not 4–16 hex characters of even length, or a
    ///   record that does not parse; `.tooBig` beyond the caps.
    public init(distributionID: String, rdata: [[UInt8]], maxSize: Int) throws(TDNSError) {
        let id = try DistributionID(validating: distributionID)
        guard !rdata.isEmpty else { throw .malformed("no CHUNK records given") }
        guard rdata.count <= KeyReceiver.maxRecords else { throw .tooBig("more than \(KeyReceiver.maxRecords) CHUNK records") }
        var total = 0
        for r in rdata { total += r.count }
        guard total <= maxSize + rdata.count * 64 else {
            throw .tooBig("distribution exceeds max_distribution_size (\(maxSize) bytes)")
        }
        var records: [CHUNKRecord] = []
        records.reserveCapacity(rdata.count)
        for (i, bytes) in rdata.enumerated() {
            do {
                records.append(try CHUNKRecord(rdata: bytes))
            } catch {
                throw .malformed("CHUNK record \(i): \(error.reason)")
            }
        }
        try self.init(id: id, records: records)
    }
}

/// One distribution with its manifest authenticated (PROTOCOL §2, §5.1, §9): what the fetcher
/// returns — the manifest checked before any data chunk was asked for (contract §2) — and what
/// a host's records become once the receiver has checked theirs. The receiver's input
/// (``KeyReceiver/process(_:)-(ReceivedDistribution)``); nothing in it is parsed again.
public struct ReceivedDistribution: Sendable {
    public let id: DistributionID
    let manifest: Manifest
    /// Sequence 1…N, in any order.
    public let dataChunks: [CHUNKRecord]

    init(id: DistributionID, manifest: Manifest, dataChunks: [CHUNKRecord]) {
        self.id = id
        self.manifest = manifest
        self.dataChunks = dataChunks
    }
}
