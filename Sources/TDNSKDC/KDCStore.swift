#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import TDNSCore

/// The KDC's state directory.
///
///     kdc.json                 the state (KDCState), replaced atomically, mode 0600
///     lock                     flock'ed around every read-modify-write of kdc.json
///     keys/                    0700: the KDC's long-term private keys and the DNSSEC keys, 0600
///     distributions/<id>.json  0700/0600: the prepared CHUNK RDATAs of each distribution
///     kdc.*.pubkey, kdc.sig0.key   the KDC's public keys, 0644, for operators and tests
///
/// Why a JSON document and not SQLite: the state is small (nodes, tokens, keys, a few hundred
/// distributions), every command reads all of it anyway, a temp-file-plus-rename replace is
/// crash-consistent without a journal, operators can read it, and it needs no extra library.
/// The big items (CHUNK data) are separate immutable files written before the state names them.
public struct KDCStore: Sendable {
    public let directory: String

    public static let stateFile = "kdc.json"
    /// Largest state document read (before parsing).
    public static let maxStateSize = 64 * 1024 * 1024
    /// Largest prepared-records file read.
    public static let maxRecordsSize = 80 * 1024 * 1024

    public init(directory: String) {
        self.directory = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
    }

    public var statePath: String { "\(directory)/\(Self.stateFile)" }
    var lockPath: String { "\(directory)/lock" }
    public func path(_ relative: String) -> String { "\(directory)/\(relative)" }

    public var exists: Bool { POSIXFile.exists(statePath) }

    /// Creates the directory layout and writes the first state. Refuses an existing state.
    public func create(_ state: KDCState) throws(TDNSError) {
        try POSIXFile.makeDirectory(directory, mode: 0o700)
        try POSIXFile.makeDirectory(path("keys"), mode: 0o700)
        try POSIXFile.makeDirectory(path("distributions"), mode: 0o700)
        try POSIXFile.locked(lockPath) { () throws(TDNSError) in
            guard !exists else { throw .config("\(directory) already holds a KDC (\(Self.stateFile) exists)") }
            try write(state)
        }
    }

    /// Reads the current state (the file is always complete: it is only ever renamed into place).
    public func load() throws(TDNSError) -> KDCState {
        guard exists else {
            throw .config("\(directory) holds no KDC state; run `tdns-kdc init --state \(directory) …` first")
        }
        let bytes = try POSIXFile.read(statePath, limit: Self.maxStateSize)
        let state: KDCState
        do {
            state = try JSONDecoder().decode(KDCState.self, from: Data(bytes))
        } catch {
            throw .storage("\(statePath) is not a valid KDC state: \(error)")
        }
        guard state.version == KDCState.currentVersion else {
            throw .storage("\(statePath) has state version \(state.version), this tdns-kdc reads \(KDCState.currentVersion)")
        }
        return state
    }

    /// Read-modify-write under the lock: loads the state, runs `body`, writes the state back if
    /// `body` changed it. If `body` throws, nothing is written.
    @discardableResult
    public func update<R>(_ body: (inout KDCState) throws(TDNSError) -> R) throws(TDNSError) -> R {
        try POSIXFile.locked(lockPath) { () throws(TDNSError) -> R in
            var state = try load()
            let before = state
            let result = try body(&state)
            if state != before { try write(state) }
            return result
        }
    }

    private func write(_ state: KDCState) throws(TDNSError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do {
            data = try encoder.encode(state)
        } catch {
            throw .internalFailure("encoding the KDC state failed: \(error)")
        }
        try POSIXFile.writeAtomically(statePath, bytes: Array(data) + [0x0A], mode: 0o600)
    }

    // MARK: - files

    /// Writes a secret (mode 0600) atomically; `relative` is below the state directory.
    public func writeSecret(_ relative: String, _ bytes: [UInt8]) throws(TDNSError) {
        try POSIXFile.writeAtomically(path(relative), bytes: bytes, mode: 0o600)
    }

    /// Writes a public file (mode 0644) atomically.
    public func writePublic(_ relative: String, _ bytes: [UInt8]) throws(TDNSError) {
        try POSIXFile.writeAtomically(path(relative), bytes: bytes, mode: 0o644)
    }

    public func read(_ relative: String, limit: Int = 1 << 20) throws(TDNSError) -> [UInt8] {
        try POSIXFile.read(path(relative), limit: limit)
    }

    // MARK: - prepared records

    /// `distributions/<id>.json`: `{"distribution_id":…,"node_id":…,"records":["<base64 RDATA>",…]}`
    /// with the manifest first and data chunks in sequence order.
    public func writeRecords(distributionID: String, nodeID: String, records: [[UInt8]]) throws(TDNSError) -> String {
        let relative = "distributions/\(distributionID).json"
        let doc = JSONValue.object([
            ("distribution_id", .string(distributionID)),
            ("node_id", .string(nodeID)),
            ("records", .array(records.map { .string(Base64.encode($0)) })),
        ])
        try writeSecret(relative, doc.serialized() + [0x0A])
        return relative
    }

    public func readRecords(_ relative: String) throws(TDNSError) -> [[UInt8]] {
        let bytes = try read(relative, limit: Self.maxRecordsSize)
        let doc = try JSONValue.parse(bytes, maxDepth: 4, maxSize: Self.maxRecordsSize)
        guard let list = doc["records"]?.arrayValue, !list.isEmpty else {
            throw .storage("\(relative) holds no records")
        }
        var out: [[UInt8]] = []
        out.reserveCapacity(list.count)
        for item in list {
            guard let text = item.stringValue else { throw .storage("\(relative): a record is not a string") }
            out.append(try Base64.decode(text))
        }
        return out
    }
}
