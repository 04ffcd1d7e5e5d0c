#if canImport(Glibc)
import Glibc
#endif
import TDNSCore
import TDNSCrypto
import TDNSWire

/// A directory of BIND key files — `K<zone>+<alg>+<tag>.key` (0644) and `.private` (0600,
/// Private-key-format v1.3 with timing metadata), as dnssec-keygen writes them, so that named's
/// `key-directory`, `dnssec-signzone -S` and `keymgr import-bind` take them as they are. All
/// three key stores keep their keys here; what differs is how the server is told.
///
/// Changes go through a ``Transaction``: every new or rewritten file is written to a
/// temporary name and fsynced first; only then are they renamed into place (`.private` before
/// `.key`, so a `.key` never points at a missing private key). Until ``Transaction/finish()``
/// the previous bytes of every file it touched are kept, so ``Transaction/rollback()`` can put
/// the directory back exactly as it was — when the server refuses the new keys.
struct KeyFileDirectory {
    let directory: String

    init(directory: String, setting: String = "key_dir") throws(TDNSError) {
        guard POSIXFile.isDirectory(directory) else { throw .config("\(setting): \(directory) is not a directory") }
        self.directory = directory
    }

    /// One key pair found in the directory.
    struct KeyFile: Equatable {
        var zone: String
        var algorithm: UInt8
        var keyTag: UInt16
        /// SEP bit of the DNSKEY flags: a KSK (or CSK).
        var isKSK: Bool
        /// Timing metadata of the `.private` file, Unix seconds.
        var inactive: Int64?
        var delete: Int64?
        var base: String
    }

    /// `K<zone>+<alg>+<tag>` — zone names here have passed DomainName.isValidFQDN, so they
    /// hold no `/` and no empty label, and cannot leave the directory.
    static func baseName(zone: String, algorithm: UInt8, keyTag: UInt16) -> String {
        "K\(zone)+\(zeroPadded(Int64(algorithm), 3))+\(zeroPadded(Int64(keyTag), 5))"
    }

    func path(_ base: String, _ ext: String) -> String { "\(directory)/\(base)\(ext)" }

    /// Temporary files of an install that was killed before its rename (`.K….tmp.XXXXXX`):
    /// never visible under a key file's name. Called with the state directory's lock held, so
    /// any temporary file seen then is stale, even when another instance shares the directory.
    func removeStaleTemporaries() {
        for name in (try? POSIXFile.list(directory)) ?? [] where name.hasPrefix(".K") && name.contains(".tmp.") {
            try? POSIXFile.remove("\(directory)/\(name)")
        }
    }

    /// The zone's key pairs (a `.key` with its `.private`), in name order.
    func keys(zone: String) throws(TDNSError) -> [KeyFile] {
        let prefix = "K\(zone)+"
        var found: [KeyFile] = []
        for name in try POSIXFile.list(directory).sorted() where name.hasPrefix(prefix) && name.hasSuffix(".key") {
            let middle = name.dropFirst(prefix.count).dropLast(4)  // "013+12345"
            let parts = middle.split(separator: "+", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0].count == 3, parts[1].count == 5,
                  let alg = UInt8(parts[0]), let tag = UInt16(parts[1]) else { continue }
            let base = String(name.dropLast(4))
            guard let keyText = try? POSIXFile.read(path(base, ".key"), limit: 64 * 1024),
                  var privateText = try? POSIXFile.read(path(base, ".private"), limit: 64 * 1024) else { continue }
            defer { zeroize(&privateText) }
            let timing = Self.timing(privateText)
            found.append(KeyFile(zone: zone, algorithm: alg, keyTag: tag, isKSK: Self.dnskeyFlags(keyText).map { $0 & 1 == 1 } ?? false,
                                 inactive: timing["Inactive"], delete: timing["Delete"], base: base))
        }
        return found
    }

    /// Removes the files of keys whose `Delete` time passed more than `grace` seconds ago: the
    /// server has dropped them from the zone by then (BIND needs the files until it has read
    /// the Delete time, so deleted keys are not removed at once).
    func purgeDeleted(zones: Set<String>? = nil, now: Int64, grace: Int64) {
        for key in allKeys() where zones?.contains(key.zone) ?? true {
            if let d = key.delete, d + grace < now {
                for ext in [".key", ".private", ".state"] { try? POSIXFile.remove(path(key.base, ext)) }
            }
        }
    }

    /// Every key pair in the directory, by zone and name.
    func allKeys() -> [KeyFile] {
        var zones = Set<String>()
        for name in (try? POSIXFile.list(directory)) ?? [] where name.hasPrefix("K") && name.hasSuffix(".key") {
            // "K<zone>+aaa+ttttt.key": the zone is everything before the last two "+" fields.
            let fields = name.dropFirst().dropLast(4).split(separator: "+", omittingEmptySubsequences: false)
            if fields.count >= 3 { zones.insert(fields.dropLast(2).joined(separator: "+")) }
        }
        return zones.sorted().flatMap { (try? keys(zone: $0)) ?? [] }
    }

    // MARK: - transactions

    final class Transaction {
        let files: KeyFileDirectory
        /// Files renamed into place: their path and what was there before (nil: nothing).
        private var committed: [(path: String, previous: [UInt8]?, mode: mode_t)] = []
        private var staged: [(tmp: String, path: String, mode: mode_t)] = []
        private(set) var finished = false

        init(_ files: KeyFileDirectory) { self.files = files }

        deinit {
            for s in staged { unlink(s.tmp) }
            for i in committed.indices { if committed[i].previous != nil { zeroize(&committed[i].previous!) } }
        }

        /// Writes `bytes` to a temporary file next to `path` (not yet visible).
        func stage(_ path: String, _ bytes: [UInt8], mode: mode_t) throws(TDNSError) {
            staged.append((try POSIXFile.writeTemporary(for: path, bytes: bytes, mode: mode), path, mode))
        }

        /// Renames every staged file into place, in staging order. On failure the directory is
        /// as before this transaction.
        func commitStaged() throws(TDNSError) {
            let batch = staged
            staged = []
            for (i, s) in batch.enumerated() {
                let previous = try? POSIXFile.read(s.path, limit: 64 * 1024)
                do {
                    try POSIXFile.commit(temporary: s.tmp, to: s.path)
                    committed.append((s.path, previous, s.mode))
                } catch {
                    for rest in batch[(i + 1)...] { unlink(rest.tmp) }
                    rollback()
                    throw error
                }
            }
        }

        /// Removes a file, keeping its bytes for a rollback. A file that is not there is fine.
        func remove(_ path: String, mode: mode_t) throws(TDNSError) {
            guard POSIXFile.exists(path) else { return }
            let previous = try POSIXFile.read(path, limit: 64 * 1024)
            try POSIXFile.remove(path)
            committed.append((path, previous, mode))
        }

        /// Puts every file back as it was (best effort; a failure here is logged by the caller
        /// through the audit line of the failed install).
        func rollback() {
            for (path, previous, mode) in committed.reversed() {
                if let previous {
                    try? POSIXFile.writeAtomically(path, bytes: previous, mode: mode)
                } else {
                    unlink(path)
                }
            }
            for i in committed.indices { if committed[i].previous != nil { zeroize(&committed[i].previous!) } }
            committed = []
        }

        /// Forgets the previous bytes: the change is final.
        func finish() {
            for i in committed.indices { if committed[i].previous != nil { zeroize(&committed[i].previous!) } }
            committed = []
            finished = true
        }
    }

    /// Stages a new key pair in `tx`.
    func stageInstall(_ key: KeyToInstall, now: Int64, in tx: Transaction) throws(TDNSError) {
        let base = Self.baseName(zone: key.zone, algorithm: key.algorithm, keyTag: key.keyTag)
        var secret = key.privateKey.bindPrivateKeyFile(created: now, publish: now, activate: now)
        defer { zeroize(&secret) }
        try tx.stage(path(base, ".private"), secret, mode: 0o600)
        try tx.stage(path(base, ".key"), keyFile(key, now: now), mode: 0o644)
    }

    /// Stages new timing metadata for an existing key: `Inactive` (stops signing) and/or
    /// `Delete` (leaves the DNSKEY set), in both the `.private` file (what the tools read) and
    /// the `.key` file's comments (what people read). Other lines are kept as they are.
    func stageTiming(_ key: KeyFile, inactive: Int64?, delete: Int64?, in tx: Transaction) throws(TDNSError) {
        var privateText = try POSIXFile.read(path(key.base, ".private"), limit: 64 * 1024)
        defer { zeroize(&privateText) }
        let keyText = try POSIXFile.read(path(key.base, ".key"), limit: 64 * 1024)
        var changes: [(String, Int64)] = []
        if let inactive { changes.append(("Inactive", inactive)) }
        if let delete { changes.append(("Delete", delete)) }
        var newPrivate = Self.settingTiming(privateText, changes, comment: false)
        defer { zeroize(&newPrivate) }
        try tx.stage(path(key.base, ".private"), newPrivate, mode: 0o600)
        try tx.stage(path(key.base, ".key"), Self.settingTiming(keyText, changes, comment: true), mode: 0o644)
    }

    /// Stages the removal of a key's files (`.key`, `.private`, and BIND's `.state`).
    func removeKey(_ key: KeyFile, in tx: Transaction) throws(TDNSError) {
        try tx.remove(path(key.base, ".key"), mode: 0o644)
        try tx.remove(path(key.base, ".state"), mode: 0o644)
        try tx.remove(path(key.base, ".private"), mode: 0o600)
    }

    // MARK: - file contents

    /// The public `.key` file with dnssec-keygen's comment header.
    private func keyFile(_ key: KeyToInstall, now: Int64) -> [UInt8] {
        let role = key.isKSK ? "key-signing" : "zone-signing"
        let stamp = DNSTime.format(now)
        let text = """
            ; This is a \(role) key, keyid \(key.keyTag), for \(key.zone)
            ; Created: \(stamp)
            ; Publish: \(stamp)
            ; Activate: \(stamp)
            \(key.zone) \(key.ttl) IN DNSKEY \(key.dnskey.flags) \(key.dnskey.protocol) \(key.dnskey.algorithm) \(Base64.encode(key.dnskey.publicKey))

            """
        return Array(text.utf8)
    }

    /// `text` with the named timing lines replaced (or added after the last timing line).
    /// In a `.key` file they are comments (`; Inactive: …`) placed before the DNSKEY line.
    static func settingTiming(_ text: [UInt8], _ changes: [(String, Int64)], comment: Bool) -> [UInt8] {
        let names = Set(changes.map(\.0))
        let prefix = comment ? "; " : ""
        var lines = text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
        if lines.last?.isEmpty == true { lines.removeLast() }
        lines.removeAll { line in names.contains { name in line.starts(with: Array("\(prefix)\(name):".utf8)) } }
        let added = changes.map { Array("\(prefix)\($0.0): \(DNSTime.format($0.1))".utf8) }
        if comment {
            // Before the first line that is not a comment (the DNSKEY record).
            let at = lines.firstIndex { !$0.isEmpty && $0.first != UInt8(ascii: ";") } ?? lines.count
            lines.insert(contentsOf: added, at: at)
        } else {
            lines.append(contentsOf: added)
        }
        var out: [UInt8] = []
        for line in lines { out += line + [UInt8(ascii: "\n")] }
        for i in lines.indices { zeroize(&lines[i]) }
        return out
    }

    /// `Name: YYYYMMDDHHMMSS` lines of a `.private` file, as Unix seconds.
    static func timing(_ text: [UInt8]) -> [String: Int64] {
        var out: [String: Int64] = [:]
        for line in text.split(separator: UInt8(ascii: "\n")) {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
            guard ["Created", "Publish", "Activate", "Inactive", "Delete"].contains(name) else { continue }
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingWhitespace()
            if let t = DNSTime.parse(value) { out[name] = t }
        }
        return out
    }

    /// The flags field of the first DNSKEY record in a `.key` file.
    static func dnskeyFlags(_ text: [UInt8]) -> UInt16? {
        for line in text.split(separator: UInt8(ascii: "\n")) where line.first != UInt8(ascii: ";") {
            let fields = String(decoding: line, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\t" })
            if let i = fields.firstIndex(of: "DNSKEY"), i + 1 < fields.count { return UInt16(fields[i + 1]) }
        }
        return nil
    }
}

// MARK: - the file part shared by all three stores

extension KeyFileDirectory {
    /// How a `delete_key` shows in the directory.
    enum DeletionStyle {
        /// `Delete` = now: BIND drops the key and its signatures when it reads that, and
        /// needs the files to read it; ``purgeDeleted(zones:now:grace:)`` removes them later.
        case markDeleted
        /// The files go at once (NSD signs from the directory; Knot keeps its own copy).
        case removeFiles
    }

    /// The committed file changes of one plan, still revertible through `transaction`.
    struct Applied {
        let transaction: Transaction
        var changes: [KeyStoreChange] = []
        /// Zones whose keys changed, in order of first appearance.
        var zones: [String] = []
        var installed: [KeyToInstall] = []
        var retired: [KeyFile] = []
        var deleted: [KeyFile] = []
    }

    func apply(_ plan: KeyPlan, now: Int64, retireAfter: Int64?, deletion: DeletionStyle) throws(TDNSError) -> Applied {
        removeStaleTemporaries()
        var applied = Applied(transaction: Transaction(self))
        func touch(_ zone: String) { if !applied.zones.contains(zone) { applied.zones.append(zone) } }
        var existing: [String: [KeyFile]] = [:]
        func keysOf(_ zone: String) throws(TDNSError) -> [KeyFile] {
            if let k = existing[zone] { return k }
            let k = try keys(zone: zone)
            existing[zone] = k
            return k
        }

        // 1. New key pairs, staged (nothing visible yet).
        for key in plan.install {
            try stageInstall(key, now: now, in: applied.transaction)
            applied.installed.append(key)
            applied.changes.append(KeyStoreChange(kind: .installed, zone: key.zone, keyTag: key.keyTag, algorithm: key.algorithm))
            touch(key.zone)
        }
        func isNew(_ k: KeyFile) -> Bool {
            plan.install.contains { $0.zone == k.zone && $0.keyTag == k.keyTag && $0.algorithm == k.algorithm }
        }

        // 2. Deletions: every key of the zone with that tag; one that is not there is a success.
        for d in plan.delete {
            let matching = try keysOf(d.zone).filter { $0.keyTag == d.keyTag && !isNew($0) }
            for k in matching where !(k.delete.map { $0 <= now } ?? false) || deletion == .removeFiles {
                if !applied.deleted.contains(k) { applied.deleted.append(k) }
            }
            applied.changes.append(KeyStoreChange(kind: .deleted, zone: d.zone, keyTag: d.keyTag, algorithm: matching.first?.algorithm))
            touch(d.zone)
        }

        // 3. Retirements: the zone's other active keys of the same role, and old_key_id.
        for key in plan.install {
            for k in try keysOf(key.zone) where !isNew(k) && !applied.deleted.contains(k) && !applied.retired.contains(k) {
                let active = k.inactive.map { $0 > now } ?? true
                if active && (k.isKSK == key.isKSK || k.keyTag == key.oldKeyTag) {
                    applied.retired.append(k)
                    applied.changes.append(KeyStoreChange(kind: .retired, zone: k.zone, keyTag: k.keyTag, algorithm: k.algorithm))
                }
            }
        }
        for k in applied.retired {
            try stageTiming(k, inactive: now, delete: k.delete ?? retireAfter.map { now + $0 }, in: applied.transaction)
        }
        if deletion == .markDeleted {
            for k in applied.deleted { try stageTiming(k, inactive: min(k.inactive ?? now, now), delete: now, in: applied.transaction) }
        }

        // 4. Into place; removals last, so that a failed install never costs an existing key.
        try applied.transaction.commitStaged()
        if deletion == .removeFiles {
            for k in applied.deleted {
                do {
                    try removeKey(k, in: applied.transaction)
                } catch {
                    applied.transaction.rollback()
                    throw error
                }
            }
        }
        return applied
    }
}
