#if canImport(Glibc)
import Glibc
#endif
import TDNSCore
import TDNSCrypto
import TDNSWire

/// Knot DNS: the key pair is kept as K-files in `key_dir` (0600, the store's own record) and
/// imported into Knot's KASP database with `keymgr ZONE import-bind`; retirements are
/// `keymgr ZONE set TAG retire=+0`, deletions `keymgr ZONE delete TAG`; then `knotc
/// zone-keys-load ZONE` (or `zone-reload` for a zone that never loaded for lack of keys). The
/// zone's policy has `manual: on`, so Knot never rolls keys on its own.
struct KnotKeyStore: KeyStore {
    let files: KeyFileDirectory
    let keymgr: [String]
    let knotc: [String]
    let command: ServerCommand

    init(directory: String, keymgr: String, knotc: String, knotConf: String?, knotSocket: String?, command: ServerCommand) throws(TDNSError) {
        files = try KeyFileDirectory(directory: directory)
        let conf = knotConf.map { ["-c", $0] } ?? []
        self.keymgr = [keymgr] + conf
        // -b: zone events report their outcome (without it knotc says OK before the event ran).
        self.knotc = [knotc] + conf + (knotSocket.map { ["-s", $0] } ?? []) + ["-t", "\(Int(command.timeout))", "-b"]
        self.command = command
    }

    func apply(_ plan: KeyPlan, now: Int64, retireAfter: Int64?) throws(TDNSError) -> KeyStoreOutcome {
        let applied = try files.apply(plan, now: now, retireAfter: retireAfter, deletion: .removeFiles)
        var notes: [String] = []
        // Each step with the step that undoes it, so a failure rolls Knot back as far as it got.
        var undo: [[String]] = []
        var failure: String? = nil
        steps: for zone in applied.zones {
            for key in applied.installed where key.zone == zone {
                let base = KeyFileDirectory.baseName(zone: zone, algorithm: key.algorithm, keyTag: key.keyTag)
                failure = command.run(notes: &notes, keymgr + [zone, "import-bind", files.path(base, ".private")])
                if failure != nil { break steps }
                undo.append(keymgr + [zone, "delete", "\(key.keyTag)"])
            }
            for k in applied.retired where k.zone == zone {
                var timers = ["retire=+0"]
                if let after = retireAfter { timers.append("remove=+\(after)") }
                failure = Self.missingIsFine(command.run(notes: &notes, keymgr + [zone, "set", "\(k.keyTag)"] + timers))
                if failure != nil { break steps }
                undo.append(keymgr + [zone, "set", "\(k.keyTag)", "retire=0", "remove=0"])
            }
            for k in applied.deleted where k.zone == zone {
                failure = Self.missingIsFine(command.run(notes: &notes, keymgr + [zone, "delete", "\(k.keyTag)"]))
                if failure != nil { break steps }
                undo.append(keymgr + [zone, "import-bind", files.path(k.base, ".private")])
            }
            // Knot cannot sign with a manual policy until the zone has an active KSK and ZSK (its
            // zone events fail until then): a first KSK alone is imported and signs once its ZSK
            // arrives.
            guard hasCompleteKeySet(zone, now: now) else {
                notes.append("\(zone): keys imported; Knot signs once the zone has an active KSK and ZSK")
                continue
            }
            if let f = loadKeys(zone, notes: &notes) {
                failure = f
                break steps
            }
        }
        if let failure {
            applied.transaction.rollback()  // first: the undo steps re-import deleted keys from the files
            // keymgr works on Knot's database directly and is not cut short; knotc is skipped
            // when stopping (knotd may be unloading this module and cannot answer).
            for step in undo.reversed() { _ = command.run(notes: &notes, step, cancellable: false) }
            if command.stopped { throw command.interrupted(applied.zones.joined(separator: " ")) }
            for zone in applied.zones { _ = loadKeys(zone, notes: &notes) }
            return KeyStoreOutcome(changes: [], serverFailure: failure, notes: notes)
        }
        applied.transaction.finish()
        return KeyStoreOutcome(changes: applied.changes, notes: notes)
    }

    /// A key Knot no longer has (an operator removed it with keymgr) is already retired or
    /// deleted as far as the zone is concerned; keymgr says "key not found".
    private static func missingIsFine(_ failure: String?) -> String? {
        guard let failure, !failure.hasSuffix("key not found") else { return nil }
        return failure
    }

    /// `zone-keys-load`; a zone that failed to load for lack of keys has nothing to re-sign
    /// yet, and needs `zone-reload` instead.
    private func loadKeys(_ zone: String, notes: inout [String]) -> String? {
        var first: [String] = []
        guard let failure = command.run(notes: &first, knotc + ["zone-keys-load", zone]) else {
            notes += first
            return nil
        }
        if command.stopped {
            notes += first
            return failure
        }
        var second: [String] = []
        if command.run(notes: &second, knotc + ["zone-reload", zone]) == nil {
            notes += second.map { $0 + " (the zone had not loaded yet: zone-keys-load has nothing to re-sign)" }
            return nil
        }
        notes += first + second
        return failure
    }

    /// Whether the zone's key files (after this change) hold an active KSK and an active ZSK.
    private func hasCompleteKeySet(_ zone: String, now: Int64) -> Bool {
        let active = ((try? files.keys(zone: zone)) ?? []).filter { $0.inactive.map { $0 > now } ?? true }
        return active.contains { $0.isKSK } && active.contains { !$0.isKSK }
    }

    func housekeeping(now: Int64) { files.removeStaleTemporaries() }
}
