#if canImport(Glibc)
import Glibc
#endif
import TDNSCore
import TDNSCrypto
import TDNSWire

/// A change made to a key store, for the audit log and the host's "keys changed" hook.
public struct KeyStoreChange: Sendable {
    public enum Kind: String, Sendable {
        case installed, deleted
        /// Stopped signing (BIND `Inactive`, Knot `retire`); still published until deleted.
        case retired
    }
    public var kind: Kind
    public var zone: String
    public var keyTag: UInt16
    /// Unknown for a deletion of a key that was not there.
    public var algorithm: UInt8?
}

/// What one distribution asks of the key store.
struct KeyPlan {
    var install: [KeyToInstall] = []
    var delete: [(zone: String, keyTag: UInt16)] = []
}

/// The result of ``KeyStore/apply(_:now:retireAfter:)``.
struct KeyStoreOutcome {
    var changes: [KeyStoreChange]
    /// Set when the server did not take the new keys (a failed `rndc loadkeys`, `keymgr`,
    /// `knotc`, signer or `nsd-control`): then every file was put back, the server was asked
    /// to load its previous keys again, `changes` is empty, and the keys are reported to the
    /// KDC as failed.
    var serverFailure: String? = nil
    /// What was run and how it went, one line each, for the host's log.
    var notes: [String] = []
}

/// Where distributed keys go, and how the server learns about them: BIND (K-files + `rndc
/// loadkeys`), Knot (`keymgr` + `knotc zone-keys-load`), NSD (K-files + signer + `nsd-control
/// reload`), or nowhere.
///
/// PROTOCOL §10.3: a new KSK retires the zone's other KSKs, a new ZSK its other ZSKs, and
/// `old_key_id` names one more key to retire. A retired key stops signing but stays in the
/// DNSKEY set (with `Delete` = now + `retire_time` when the manifest gives one) until a
/// `delete_key` removes it.
protocol KeyStore: Sendable {
    /// Applies all installs, retirements and deletions of `plan`, or none of them. A server
    /// that refuses is reported in the outcome. Throws when the files cannot be written, or
    /// when the node stops while the server is being told (``ServerCommand/interrupted(_:)``);
    /// either way nothing changed. Called with the state directory's lock held.
    func apply(_ plan: KeyPlan, now: Int64, retireAfter: Int64?) throws(TDNSError) -> KeyStoreOutcome
    /// Housekeeping at start: temporaries of an install killed half-way, files of keys
    /// deleted long ago, NSD's served files. Called with the lock held.
    func housekeeping(now: Int64)
}

/// Stores nothing (`key_store=none`): for hosts that only want the report.
struct NoKeyStore: KeyStore {
    func apply(_ plan: KeyPlan, now: Int64, retireAfter: Int64?) throws(TDNSError) -> KeyStoreOutcome {
        KeyStoreOutcome(changes:
            plan.install.map { KeyStoreChange(kind: .installed, zone: $0.zone, keyTag: $0.keyTag, algorithm: $0.algorithm) }
            + plan.delete.map { KeyStoreChange(kind: .deleted, zone: $0.zone, keyTag: $0.keyTag, algorithm: nil) })
    }
    func housekeeping(now: Int64) {}
}

/// A control tool of the server, run through ``Subprocess`` with a bounded wait — cut short
/// when the node stops, because the host may be unloading this module in the very thread
/// that would answer the tool (`knotc reload` runs knotc's commands and the module unload in
/// one thread; named's control channel is alike).
struct ServerCommand: Sendable {
    let timeout: Double
    let stop: StopSignal?

    /// True once the node stops; a store then puts its files back and throws
    /// ``interrupted(_:)`` instead of reporting a failure, so that nothing is recorded and
    /// the distribution is processed again at the next start.
    var stopped: Bool { stop?.isSet == true }

    func interrupted(_ zone: String) -> TDNSError {
        .network("stopped while telling the server about \(zone); nothing kept, processed again at the next start")
    }

    /// Runs `argv`; nil on success, else one line saying what failed. Either way a line
    /// (`rndc loadkeys example.test.: ok`) is added to `notes`.
    func run(notes: inout [String], _ argv: [String], cancellable: Bool = true) -> String? {
        let name = argv.first.map { POSIXFile.split($0).name } ?? "?"
        // Options (-c FILE, -s SOCKET, -t N) are left out of the line: the command is what matters.
        var shown: [String] = []
        var skip = false
        for a in argv.dropFirst() {
            if skip { skip = false; continue }
            if ["-c", "-s", "-t", "-K", "-d", "-N", "-o", "-f"].contains(a) { skip = true; continue }
            if a.hasPrefix("-") { continue }
            shown.append(a)
        }
        let line = ([name] + shown).joined(separator: " ")
        do {
            let stop = self.stop
            let outcome = try Subprocess.run(argv, timeout: timeout, cancelled: { cancellable && stop?.isSet == true })
            let said = "\(line): \(outcome.summary(timeout: timeout))"
            notes.append(said)
            return outcome.succeeded ? nil : said
        } catch {
            let said = "\(line): \(error.reason)"
            notes.append(said)
            return said
        }
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

// MARK: - BIND

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

// MARK: - Knot

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

// MARK: - NSD

/// NSD has no key handling of its own: the store keeps K-files in `key_dir`, signs the
/// unsigned zone `zone_dir/<zone>zone` into `signed_dir/<zone>zone.signed` with `signer`
/// (`dnssec-signzone -S`, which follows the keys' timing metadata: retired keys are published
/// but do not sign), and asks NSD to load it with `nsd-control reload ZONE`. The signed file
/// is replaced atomically, and put back when NSD refuses it.
struct NSDKeyStore: KeyStore {
    let files: KeyFileDirectory
    let signer: String
    let zoneDirectory: String
    let signedDirectory: String
    let nsdControl: [String]?
    let command: ServerCommand

    init(directory: String, signer: String, zoneDirectory: String, signedDirectory: String,
         nsdControl: String?, nsdConf: String?, command: ServerCommand) throws(TDNSError) {
        files = try KeyFileDirectory(directory: directory)
        guard POSIXFile.isDirectory(zoneDirectory) else { throw .config("zone_dir: \(zoneDirectory) is not a directory") }
        guard POSIXFile.isDirectory(signedDirectory) else { throw .config("signed_dir: \(signedDirectory) is not a directory") }
        self.signer = signer
        self.zoneDirectory = zoneDirectory
        self.signedDirectory = signedDirectory
        self.nsdControl = nsdControl.map { [$0] + (nsdConf.map { ["-c", $0] } ?? []) }
        self.command = command
    }

    func signedPath(_ zone: String) -> String { "\(signedDirectory)/\(zone)zone.signed" }

    /// A signed zone put in place, with the previous one kept under a second name until the
    /// change is final.
    private struct Replaced {
        let zone: String
        let path: String
        let backup: String?
        func restore() { if let backup { rename(backup, path) } else { unlink(path) } }
        func discardBackup() { if let backup { unlink(backup) } }
    }

    func apply(_ plan: KeyPlan, now: Int64, retireAfter: Int64?) throws(TDNSError) -> KeyStoreOutcome {
        let applied = try files.apply(plan, now: now, retireAfter: retireAfter, deletion: .removeFiles)
        var notes: [String] = []
        var replaced: [Replaced] = []
        var failure: String? = nil
        for zone in applied.zones {
            switch publish(zone, notes: &notes) {
            case .success(let r): replaced.append(r)
            case .failure(let f):
                if let r = f.replaced { replaced.append(r) }
                failure = f.reason
            }
            if failure != nil { break }
        }
        if let failure {
            applied.transaction.rollback()
            for r in replaced.reversed() { r.restore() }
            if command.stopped { throw command.interrupted(applied.zones.joined(separator: " ")) }
            if let control = nsdControl {
                for r in replaced { _ = command.run(notes: &notes, control + ["reload", r.zone]) }
            }
            return KeyStoreOutcome(changes: [], serverFailure: failure, notes: notes)
        }
        for r in replaced { r.discardBackup() }
        applied.transaction.finish()
        return KeyStoreOutcome(changes: applied.changes, notes: notes)
    }

    private struct PublishFailure: Error {
        let reason: String
        /// Set when the new file was already in place (NSD refused it).
        var replaced: Replaced? = nil
    }

    /// Signs the zone into a new file, puts it in place atomically (the previous one kept as a
    /// backup) and has NSD reload it.
    private func publish(_ zone: String, notes: inout [String]) -> Result<Replaced, PublishFailure> {
        let target = signedPath(zone)
        let fresh = "\(signedDirectory)/.\(zone)zone.signed.new"
        unlink(fresh)
        if let f = sign(zone, into: fresh, notes: &notes) {
            unlink(fresh)
            return .failure(PublishFailure(reason: f))
        }
        let backup = "\(signedDirectory)/.\(zone)zone.signed.previous"
        unlink(backup)
        let hadPrevious = POSIXFile.exists(target) && link(target, backup) == 0
        do {
            try POSIXFile.commit(temporary: fresh, to: target)
        } catch {
            unlink(fresh)
            if hadPrevious { unlink(backup) }
            return .failure(PublishFailure(reason: "\(target): \(error.reason)"))
        }
        let replaced = Replaced(zone: zone, path: target, backup: hadPrevious ? backup : nil)
        if let control = nsdControl, let f = command.run(notes: &notes, control + ["reload", zone]) {
            return .failure(PublishFailure(reason: f, replaced: replaced))
        }
        return .success(replaced)
    }

    /// Signs `zone_dir/<zone>zone` with the zone's keys in `key_dir` into `output`; a zone
    /// without keys is copied as it is (NSD serves it unsigned rather than not at all).
    func sign(_ zone: String, into output: String, notes: inout [String]) -> String? {
        let input = "\(zoneDirectory)/\(zone)zone"
        guard POSIXFile.exists(input) else { return "\(input): no unsigned zone file for \(zone)" }
        let keys = ((try? files.keys(zone: zone)) ?? []).filter { $0.delete == nil }
        if keys.isEmpty {
            do {
                try POSIXFile.writeAtomically(output, bytes: try POSIXFile.read(input, limit: Self.maxZoneFile), mode: 0o644)
            } catch {
                return "\(zone): copying the unsigned zone: \(error.reason)"
            }
            notes.append("\(zone): no keys, served unsigned")
            return nil
        }
        waitForNewSerial(of: zone)
        // -S: smart signing (timing metadata), -x: the DNSKEY set signed by KSKs only (as
        // named does), -z when the keys are all of one role (the KDC sends a zone's KSK and
        // ZSK in separate distributions: the first one signs everything until the other
        // arrives), -d: dsset files next to the signed zone, -N unixtime: a serial that
        // increases, -o: origin.
        let active = keys.filter { $0.inactive == nil }
        let oneRole = !(active.contains { $0.isKSK } && active.contains { !$0.isKSK })
        if let failure = command.run(notes: &notes, [signer, "-S", "-x"] + (oneRole ? ["-z"] : []) + [
            "-K", files.directory, "-d", signedDirectory, "-N", "unixtime", "-o", zone, "-f", output, input,
        ]) {
            return failure
        }
        // The signer does not fsync; the rename that follows must not expose an empty file.
        let fd = open(output, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "\(output): \(POSIXFile.errnoText())" }
        defer { close(fd) }
        return fsync(fd) == 0 ? nil : "\(output): fsync: \(POSIXFile.errnoText())"
    }

    static let maxZoneFile = 1 << 30

    /// `-N unixtime` gives two signings within one second the same serial, and secondaries
    /// would miss the second; so a signing waits (at most two seconds) until the clock has
    /// passed the serial of the zone it replaces.
    private func waitForNewSerial(of zone: String) {
        guard let serial = Self.soaSerial(signedPath(zone)) else { return }
        var now = Int64(time(nil))
        guard serial >= now, serial < now + 3 else { return }
        while now <= serial {
            usleep(50_000)
            now = Int64(time(nil))
        }
    }

    /// The SOA serial of a zone file as dnssec-signzone writes it (the SOA near the top:
    /// `owner ttl IN SOA mname rname ( serial ; serial …`), or nil.
    static func soaSerial(_ path: String) -> Int64? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 16 * 1024)
        let n = head.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        var tokens: [Substring] = []
        for line in String(decoding: head[0..<n], as: UTF8.self).split(separator: "\n") where !line.hasPrefix(";") {
            let code = line.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            tokens += code.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "(" || $0 == ")" })
        }
        guard let soa = tokens.firstIndex(of: "SOA"), soa + 3 < tokens.count else { return nil }
        return Int64(tokens[soa + 3])
    }

    /// Zones with keys in `key_dir` and an unsigned zone file in `zone_dir`.
    func zonesWithKeys() -> [String] {
        var zones: [String] = []
        for k in files.allKeys() where !zones.contains(k.zone) && POSIXFile.exists("\(zoneDirectory)/\(k.zone)zone") {
            zones.append(k.zone)
        }
        return zones
    }

    /// Signs the zone again and reloads it (no key changes): for `tdnskrs-nsd sign` and the
    /// periodic refresh. NSD keeps the previous file when it refuses the new one.
    func resign(_ zone: String) throws(TDNSError) -> [String] {
        var notes: [String] = []
        switch publish(zone, notes: &notes) {
        case .success(let r):
            r.discardBackup()
            return notes
        case .failure(let f):
            f.replaced?.restore()
            throw .storage(f.reason)
        }
    }

    /// At start: temporaries, and a served file for every unsigned zone that has none yet
    /// (signed if it has keys, else a copy), so that NSD can load every zone it is given.
    func housekeeping(now: Int64) {
        files.removeStaleTemporaries()
        for name in (try? POSIXFile.list(zoneDirectory)) ?? [] where name.hasSuffix(".zone") {
            let zone = String(name.dropLast(4))
            guard DomainName.isValidFQDN(zone), !POSIXFile.exists(signedPath(zone)) else { continue }
            var notes: [String] = []
            if case .success(let r) = publish(zone, notes: &notes) { r.discardBackup() }
        }
    }
}
