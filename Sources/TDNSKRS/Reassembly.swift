import TDNSCore
import TDNSWire

/// Puts the transport blob B back together from data chunks 1…N (PROTOCOL §2.4), in any
/// order. Identical duplicates are tolerated; conflicting duplicates, gaps, sequences out of
/// range and Total values that disagree with the manifest's chunk_count are refused. The size
/// cap is enforced from the chunk lengths before anything is allocated, and no chunk may carry
/// more than the manifest's chunk_size.
enum Reassembly {
    static func assemble(_ chunks: [CHUNKRecord], chunkCount: Int, maxSize: Int, chunkSize: Int? = nil) throws(TDNSError) -> [UInt8] {
        guard chunkCount > 0 else { throw .malformed("no data chunks expected, but some were given") }
        var slots = [CHUNKRecord?](repeating: nil, count: chunkCount)
        for chunk in chunks {
            guard Int(chunk.total) == chunkCount else {
                throw .malformed("chunk \(chunk.sequence) says Total \(chunk.total), manifest says chunk_count \(chunkCount)")
            }
            let index = Int(chunk.sequence) - 1
            guard index >= 0, index < chunkCount else {
                throw .malformed("chunk sequence \(chunk.sequence) is outside 1…\(chunkCount)")
            }
            guard chunk.hmac.isEmpty else { throw .malformed("data chunk \(chunk.sequence) carries an HMAC") }
            if let chunkSize, chunk.data.count > chunkSize {
                throw .malformed("data chunk \(chunk.sequence) holds \(chunk.data.count) bytes, the manifest's chunk_size is \(chunkSize)")
            }
            if let existing = slots[index] {
                guard existing.data == chunk.data, existing.format == chunk.format else {
                    throw .malformed("conflicting duplicates of chunk \(chunk.sequence)")
                }
            } else {
                slots[index] = chunk
            }
        }
        var total = 0
        for (i, slot) in slots.enumerated() {
            guard let slot else { throw .malformed("data chunk \(i + 1) of \(chunkCount) is missing") }
            total += slot.data.count
            guard total <= maxSize else {
                throw .tooBig("distribution exceeds max_distribution_size (\(maxSize) bytes)")
            }
        }
        var blob: [UInt8] = []
        blob.reserveCapacity(total)
        for slot in slots { if let slot { blob.append(contentsOf: slot.data) } }
        return blob
    }
}
