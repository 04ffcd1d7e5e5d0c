#if canImport(Glibc)
import Glibc
#endif
import TDNSCore
import TDNSWire

/// The KRS's state directory (0700):
///
/// - `processed` — one line per processed distribution, `<node_id> <distribution_id> <unix time>`:
///   the replay record (PROTOCOL §19). A replayed ID is refused even while its timestamp is
///   still fresh.
/// - `audit.log` — one JSON line per install, retirement, deletion, failed install and
///   refusal; never key material.
/// - `components.json` — the last node_operations component list.
/// - `lock` — held (flock) while a distribution is processed, so instances that share the
///   directory (a host reloading creates the new instance before destroying the old) and
///   separate processes never interleave.
struct StateStore: Sendable {
    let directory: String
    static let maxProcessedFile = 16 * 1024 * 1024

    init(directory: String) throws(TDNSError) {
        do {
            try POSIXFile.makeDirectory(directory, mode: 0o700)
        } catch {
            throw .config("state_dir: \(error.reason)")
        }
        self.directory = directory
    }

    var processedPath: String { "\(directory)/processed" }
    var auditPath: String { "\(directory)/audit.log" }
    var componentsPath: String { "\(directory)/components.json" }

    /// Runs `body` holding the state directory's lock.
    func locked<R>(_ body: () throws(TDNSError) -> R) throws(TDNSError) -> R {
        try POSIXFile.locked("\(directory)/lock", body)
    }

    func wasProcessed(node: DNSName, distributionID: DistributionID) throws(TDNSError) -> Bool {
        guard POSIXFile.exists(processedPath) else { return false }
        let text = try POSIXFile.read(processedPath, limit: Self.maxProcessedFile)
        let wanted = Array("\(node) \(distributionID) ".utf8)
        for line in text.split(separator: UInt8(ascii: "\n")) where line.starts(with: wanted) {
            return true
        }
        return false
    }

    func recordProcessed(node: DNSName, distributionID: DistributionID, at time: Int64) throws(TDNSError) {
        try POSIXFile.appendLine(processedPath, Array("\(node) \(distributionID) \(time)".utf8), mode: 0o600)
    }

    /// Appends one audit record. Values are JSON strings or integers; never key material.
    func audit(_ fields: [(String, JSONValue)]) throws(TDNSError) {
        try POSIXFile.appendLine(auditPath, JSONValue.object(fields).serialized(), mode: 0o600)
    }

    /// The last `count` audit records (newest last), read from the end of the log: what any
    /// process — `tdns-krs status` beside a running node — can tell about past distributions.
    func recentAudit(_ count: Int) -> [JSONValue] {
        let fd = open(auditPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        let size = lseek(fd, 0, SEEK_END)
        let window = min(Int(max(size, 0)), 64 * 1024)
        guard window > 0, lseek(fd, off_t(Int(size) - window), SEEK_SET) >= 0 else { return [] }
        var tail = [UInt8](repeating: 0, count: window)
        let n = tail.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return [] }
        var lines = tail[0..<n].split(separator: UInt8(ascii: "\n"))
        if window < Int(size), !lines.isEmpty { lines.removeFirst() }  // cut by the window
        return lines.suffix(count).compactMap { try? JSONValue.parse(Array($0), maxDepth: 4, maxSize: $0.count) }
    }

    func storeComponents(_ ids: [String]) throws(TDNSError) {
        let json = JSONValue.array(ids.map { .object([("component_id", .string($0))]) })
        try POSIXFile.writeAtomically(componentsPath, bytes: json.serialized(), mode: 0o600)
    }
}
