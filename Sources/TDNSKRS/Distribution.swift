import TDNSCore
import TDNSWire

/// One distribution as it reached the node: its manifest record (CHUNK sequence 0) and its
/// data chunks, each parsed once — by the fetcher from the KDC's answers, or by
/// `krs_process_distribution` from the host's RDATAs — and handed as this value to
/// ``KeyReceiver/process(_:)`` (PROTOCOL §2, §5.1).
public struct ReceivedDistribution: Sendable {
    /// Lowercase, as announced or requested.
    public let distributionID: String
    public let manifestRecord: CHUNKRecord
    /// Sequence 1…N, in any order; identical duplicates are tolerated by the reassembly.
    public let dataChunks: [CHUNKRecord]
    /// The manifest as the fetcher authenticated it before it asked for any data chunk
    /// (contract §2), so that it is decoded once; nil when the records came from elsewhere,
    /// and then the receiver authenticates it.
    let manifest: Manifest?

    init(distributionID: String, manifestRecord: CHUNKRecord, manifest: Manifest?, dataChunks: [CHUNKRecord]) {
        self.distributionID = distributionID.lowercasedASCII()
        self.manifestRecord = manifestRecord
        self.manifest = manifest
        self.dataChunks = dataChunks
    }

    /// Separates the manifest from the data chunks.
    ///
    /// - Throws: `.malformed` without a manifest or with two different ones; `.tooBig` for
    ///   more than ``KeyReceiver/maxRecords`` records.
    public init(distributionID: String, records: [CHUNKRecord]) throws(TDNSError) {
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
        self.init(distributionID: distributionID, manifestRecord: manifestRecord, manifest: nil, dataChunks: dataChunks)
    }

    /// Parses CHUNK RDATAs (the C API's input), each once. The bytes given are capped at
    /// `maxSize` plus a little per record for the CHUNK headers before anything is parsed.
    public init(distributionID: String, rdata: [[UInt8]], maxSize: Int) throws(TDNSError) {
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
        try self.init(distributionID: distributionID, records: records)
    }
}
