import TDNSCore
import TDNSWire

extension KDC {
    /// `export-zone`: the control zone as a zone file, one record per line, so that BIND, Knot
    /// or NSD can serve the distributions instead of `serve`: SOA, NS (+ address of the name
    /// server, the listen address), then every CHUNK record of every live (pending or
    /// notified) distribution before its deadline at the names of PROTOCOL §2.6, TTL 300.
    /// (A server loaded from it keeps serving them until the zone is exported again.)
    ///
    /// With `generic`, CHUNK RDATA is written in the RFC 3597 form `TYPE65288 \# LEN HEX`,
    /// which servers that do not know CHUNK load; otherwise in tdns's own presentation
    /// (PROTOCOL §2.3), which only tdns tools read.
    public func exportZone(generic: Bool) throws(TDNSError) -> String {
        let state = try store.load()
        let zone = try DNSName(state.config.controlZone)
        let type = RRType(state.config.chunkType)
        let serial = UInt32(truncatingIfNeeded: max(0, clock.now))
        let ns = try zone.prepending(label: "ns")
        let hostmaster = try zone.prepending(label: "hostmaster")
        var lines: [String] = [
            "; control zone \(zone) of tdns-kdc, exported \(RFC3339.format(clock.now))",
            "$TTL 300",
            "\(zone)\t3600\tIN\tSOA\t\(ns) \(hostmaster) \(serial) 3600 600 86400 300",
            "\(zone)\t3600\tIN\tNS\t\(ns)",
        ]
        if let host = KDCInput.host(of: state.config.listen) {
            lines.append("\(ns)\t3600\tIN\t\(host.contains(":") ? "AAAA" : "A")\t\(host)")
        }
        let now = clock.now
        for d in state.distributions where d.isServable(now: now) {
            let nodeID = try DNSName(d.nodeID)
            let records = try store.readRecords(d.recordsFile)
            for (i, rdata) in records.enumerated() {
                let owner = try TDNSMessages.chunkQueryName(
                    sequence: UInt16(truncatingIfNeeded: i), nodeID: nodeID, distributionID: try DistributionID(validating: d.id), controlZone: zone)
                let text: String
                if generic {
                    text = "TYPE\(type.rawValue)\t\(GenericRData.presentation(rdata))"
                } else {
                    text = "\(type)\t\(try CHUNKRecord(rdata: rdata).presentation)"
                }
                lines.append("\(owner)\t\(KDCService.answerTTL)\tIN\t\(text)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
