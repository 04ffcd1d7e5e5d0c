#if canImport(Glibc)
import Glibc
#endif
import TDNSCore

/// The KRS's state directory (0700):
///
/// - `processed` — one line per processed distribution, `<node_id> <distribution_id> <unix time>`:
///   the replay record (PROTOCOL §19). A replayed ID is refused even while its timestamp is
///   still fresh.
/// - `audit.log` — one JSON line per install, delete and refusal; never key material.
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

    func wasProcessed(node: String, distributionID: String) throws(TDNSError) -> Bool {
        guard POSIXFile.exists(processedPath) else { return false }
        let text = try POSIXFile.read(processedPath, limit: Self.maxProcessedFile)
        let wanted = Array("\(node) \(distributionID) ".utf8)
        for line in text.split(separator: UInt8(ascii: "\n")) where line.starts(with: wanted) {
            return true
        }
        return false
    }

    func recordProcessed(node: String, distributionID: String, at time: Int64) throws(TDNSError) {
        try POSIXFile.appendLine(processedPath, Array("\(node) \(distributionID) \(time)".utf8), mode: 0o600)
    }

    /// Appends one audit record. Values are JSON strings or integers; never key material.
    func audit(_ fields: [(String, JSONValue)]) throws(TDNSError) {
        try POSIXFile.appendLine(auditPath, JSONValue.object(fields).serialized(), mode: 0o600)
    }

    func storeComponents(_ ids: [String]) throws(TDNSError) {
        let json = JSONValue.array(ids.map { .object([("component_id", .string($0))]) })
        try POSIXFile.writeAtomically(componentsPath, bytes: json.serialized(), mode: 0o600)
    }
}
