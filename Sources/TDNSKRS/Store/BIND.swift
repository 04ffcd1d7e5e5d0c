#if canImport(Glibc)
import Glibc
#endif
import TDNSCore
import TDNSCrypto
import TDNSWire

/// BIND 9: K-files in named's `key-directory`, then `rndc loadkeys ZONE` (when `rndc` is set).
/// The zone is configured with `auto-dnssec maintain; inline-signing yes;` so that named
/// signs with the keys in the directory and follows their timing metadata — the KDC decides
/// when keys come and go, not a dnssec-policy.
struct BINDKeyStore: KeyStore {
    let files: KeyFileDirectory
    let rndc: [String]?
    let command: ServerCommand
    /// Files of deleted keys stay this long after their Delete time (named must read it).
    static let deletedKeyGrace: Int64 = 3600

    init(directory: String, rndc: String?, rndcConf: String?, command: ServerCommand) throws(TDNSError) {
        files = try KeyFileDirectory(directory: directory)
        self.rndc = rndc.map { [$0] + (rndcConf.map { ["-c", $0] } ?? []) }
        self.command = command
    }

    func apply(_ plan: KeyPlan, now: Int64, retireAfter: Int64?) throws(TDNSError) -> KeyStoreOutcome {
        let applied = try files.apply(plan, now: now, retireAfter: retireAfter, deletion: .markDeleted)
        var notes: [String] = []
        if let rndc {
            var told: [String] = []
            for zone in applied.zones {
                if let failure = command.run(notes: &notes, rndc + ["loadkeys", zone]) {
                    applied.transaction.rollback()
                    if command.stopped { throw command.interrupted(zone) }
                    for z in told { _ = command.run(notes: &notes, rndc + ["loadkeys", z]) }
                    return KeyStoreOutcome(changes: [], serverFailure: failure, notes: notes)
                }
                told.append(zone)
            }
        }
        applied.transaction.finish()
        files.purgeDeleted(zones: Set(applied.zones), now: now, grace: Self.deletedKeyGrace)
        return KeyStoreOutcome(changes: applied.changes, notes: notes)
    }

    func housekeeping(now: Int64) {
        files.removeStaleTemporaries()
        files.purgeDeleted(now: now, grace: Self.deletedKeyGrace)
    }
}
