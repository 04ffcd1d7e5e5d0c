#if canImport(Glibc)
import Glibc
#endif
import TDNSCore
import TDNSCrypto
import TDNSWire

/// A change made to a key store, for the audit log and the host's "keys changed" hook.
public struct KeyStoreChange: Sendable {
    public enum Kind: String, Sendable { case installed, deleted }
    public var kind: Kind
    public var zone: String
    public var keyTag: UInt16
    /// Unknown for a deletion of a key that was not there.
    public var algorithm: UInt8?
}

/// Where distributed keys go. BIND key files now; Knot and NSD stores build on it later.
protocol KeyStore: Sendable {
    /// Applies all installs and deletions, or none of them: on failure every file written by
    /// this call is removed again and the store is as before. Called with the state
    /// directory's lock held.
    func apply(install: [KeyToInstall], delete: [(zone: String, keyTag: UInt16)], now: Int64) throws(TDNSError) -> [KeyStoreChange]
    /// Removes temporary files an install killed half-way left; called with the lock held.
    func removeStaleTemporaries()
}

extension KeyStore {
    func removeStaleTemporaries() {}
}

/// Stores nothing (`key_store=none`): for hosts that only want the report.
struct NoKeyStore: KeyStore {
    func apply(install: [KeyToInstall], delete: [(zone: String, keyTag: UInt16)], now: Int64) throws(TDNSError) -> [KeyStoreChange] {
        install.map { KeyStoreChange(kind: .installed, zone: $0.zone, keyTag: $0.keyTag, algorithm: $0.algorithm) }
            + delete.map { KeyStoreChange(kind: .deleted, zone: $0.zone, keyTag: $0.keyTag, algorithm: nil) }
    }
}

/// BIND key files in one directory: `K<zone>+<alg>+<tag>.key` (0644) and `.private` (0600,
/// Private-key-format v1.3 with Created/Publish/Activate), as dnssec-keygen writes them, so
/// `dnssec-signzone`, named's `key-directory` and `keymgr import-bind` take them as they are.
struct BINDKeyStore: KeyStore {
    let directory: String

    init(directory: String) throws(TDNSError) {
        guard POSIXFile.isDirectory(directory) else { throw .config("key_dir: \(directory) is not a directory") }
        self.directory = directory
    }

    /// Temporary files of an install that was killed before its rename (`.K….tmp.XXXXXX`):
    /// never visible under a key file's name; removed by the next install. (Installs hold the
    /// state directory's lock, so any temporary file seen then is stale, even when another
    /// instance shares the directory.)
    func removeStaleTemporaries() {
        for name in (try? POSIXFile.list(directory)) ?? [] where name.hasPrefix(".K") && name.contains(".tmp.") {
            try? POSIXFile.remove("\(directory)/\(name)")
        }
    }

    /// `K<zone>+<alg>+<tag>` — zone names here have passed DomainName.isValidFQDN, so they
    /// hold no `/` and no empty label, and cannot leave the directory.
    static func baseName(zone: String, algorithm: UInt8, keyTag: UInt16) -> String {
        "K\(zone)+\(pad(Int(algorithm), 3))+\(pad(Int(keyTag), 5))"
    }

    func apply(install: [KeyToInstall], delete: [(zone: String, keyTag: UInt16)], now: Int64) throws(TDNSError) -> [KeyStoreChange] {
        removeStaleTemporaries()
        // 1. Write every new file to a temporary name (fsynced). Nothing is visible yet.
        var staged: [(tmp: String, path: String)] = []
        func discardStaged() { for s in staged { unlink(s.tmp) } }
        for key in install {
            let base = "\(directory)/\(Self.baseName(zone: key.zone, algorithm: key.algorithm, keyTag: key.keyTag))"
            do {
                var secret = key.privateKey.bindPrivateKeyFile(created: now, publish: now, activate: now)
                defer { zeroize(&secret) }
                staged.append((try POSIXFile.writeTemporary(for: base + ".private", bytes: secret, mode: 0o600), base + ".private"))
                staged.append((try POSIXFile.writeTemporary(for: base + ".key", bytes: keyFile(key, now: now), mode: 0o644), base + ".key"))
            } catch {
                discardStaged()
                throw error
            }
        }
        // 2. Find the files to delete before touching anything.
        var doomed: [String] = []
        var deletions: [KeyStoreChange] = []
        let names: [String]
        do {
            names = try POSIXFile.list(directory)
        } catch {
            discardStaged()
            throw error
        }
        for d in delete {
            let prefix = "K\(d.zone)+"
            let suffix = "+\(Self.pad(Int(d.keyTag), 5))"
            var algorithm: UInt8? = nil
            for name in names where name.hasPrefix(prefix) {
                for ext in [".key", ".private", ".state"] where name.hasSuffix(suffix + ext) {
                    let middle = name.dropFirst(prefix.count).dropLast(suffix.count + ext.count)
                    guard middle.count == 3, let alg = UInt8(middle) else { continue }
                    algorithm = alg
                    doomed.append("\(directory)/\(name)")
                }
            }
            deletions.append(KeyStoreChange(kind: .deleted, zone: d.zone, keyTag: d.keyTag, algorithm: algorithm))
        }
        // 3. Rename the new files into place: .private first, so a .key never points at a
        //    missing private key. On failure, remove what this call put in place.
        var committed: [String] = []
        for (i, s) in staged.enumerated() {
            do {
                try POSIXFile.commit(temporary: s.tmp, to: s.path)
                committed.append(s.path)
            } catch {
                for rest in staged[(i + 1)...] { unlink(rest.tmp) }
                for path in committed { unlink(path) }
                throw error
            }
        }
        // 4. Deletions last: a failed install never costs an existing key.
        for path in doomed { try POSIXFile.remove(path) }
        return install.map { KeyStoreChange(kind: .installed, zone: $0.zone, keyTag: $0.keyTag, algorithm: $0.algorithm) } + deletions
    }

    /// The public `.key` file with dnssec-keygen's comment header.
    private func keyFile(_ key: KeyToInstall, now: Int64) -> [UInt8] {
        let role = key.isKSK ? "key-signing" : "zone-signing"
        let stamp = BINDTime.format(now)
        let text = """
            ; This is a \(role) key, keyid \(key.keyTag), for \(key.zone)
            ; Created: \(stamp)
            ; Publish: \(stamp)
            ; Activate: \(stamp)
            \(key.zone) \(key.ttl) IN DNSKEY \(key.dnskey.flags) \(key.dnskey.protocol) \(key.dnskey.algorithm) \(Base64.encode(key.dnskey.publicKey))

            """
        return Array(text.utf8)
    }

    static func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}

/// BIND's timing-metadata timestamps: YYYYMMDDHHMMSS in UTC.
enum BINDTime {
    static func format(_ unix: Int64) -> String {
        var t = time_t(unix)
        var tm = tm()
        gmtime_r(&t, &tm)
        func p(_ v: Int32, _ w: Int) -> String { BINDKeyStore.pad(Int(v), w) }
        return p(tm.tm_year + 1900, 4) + p(tm.tm_mon + 1, 2) + p(tm.tm_mday, 2) + p(tm.tm_hour, 2) + p(tm.tm_min, 2) + p(tm.tm_sec, 2)
    }
}
