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
///
/// knotd refuses to load a zone with `dnssec-signing: on` and no keys ("no keys are
/// available"), so a zone handed to the KRS is configured with `dnssec-signing: off` and
/// served unsigned until the zone has an active KSK and ZSK; then the store turns signing on
/// in knotd's running configuration (`knotc conf-begin`, `conf-set
/// zone[ZONE].dnssec-signing on`, `conf-commit`: knotd loads and signs the zone at once). A
/// text knot.conf is read again at `knotc reload` and restart, which turns it off again:
/// ``housekeeping(now:)`` — run at every start of the KRS, so also after each `knotc reload` —
/// turns it on again for every zone with a complete key set, and the log says to write
/// `dnssec-signing: on` into knot.conf.
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
        var cannotSign: [(zone: String, reason: String)] = []
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
            // arrives; the KDC hears that it does not sign yet.
            guard hasCompleteKeySet(zone, now: now) else {
                let reason = "installed, but Knot cannot sign \(zone) until it has an active KSK and ZSK"
                notes.append("\(zone): keys imported; Knot signs once the zone has an active KSK and ZSK")
                if applied.installed.contains(where: { $0.zone == zone }) { cannotSign.append((zone, reason)) }
                continue
            }
            // A zone served unsigned until now: turning signing on makes knotd load and sign it
            // with these keys (zone-keys-load would be refused: signing is off).
            switch enableSigning(zone, notes: &notes) {
            case .failure(let f):
                failure = f.line
                break steps
            case .success(true):
                continue
            case .success(false):
                break
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
        return KeyStoreOutcome(changes: applied.changes, notes: notes, cannotSign: cannotSign)
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

    /// Runs `knotc ARGS` and returns its output; nil when knotc failed or could not be run.
    private func knotcOutput(_ args: [String]) -> String? {
        let stop = command.stop
        guard let o = try? Subprocess.run(knotc + args, timeout: command.timeout, cancelled: { stop?.isStopped == true }),
              o.succeeded else { return nil }
        return o.output
    }

    /// The value of one item of knotd's running configuration (`knotc conf-read`): "" when the
    /// item is not set, nil when knotc could not say.
    private func confValue(_ item: String) -> String? {
        guard let out = knotcOutput(["conf-read", item]) else { return nil }
        // "zone[example.com.].dnssec-signing = on"; nothing at all for an item not set.
        let words = out.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard words.count >= 3, words[1] == "=" else { return "" }
        return String(words[2])
    }

    /// Whether the running knotd signs the zone: the zone's `dnssec-signing`, else its
    /// template's (`default` when it names none), else Knot's default, off. Nil when knotc
    /// could not say.
    private func signingIsOn(_ zone: String) -> Bool? {
        guard let own = confValue("zone[\(zone)].dnssec-signing") else { return nil }
        if !own.isEmpty { return own == "on" }
        guard let template = confValue("zone[\(zone)].template") else { return nil }
        guard let inherited = confValue("template[\(template.isEmpty ? "default" : template)].dnssec-signing") else { return nil }
        return inherited == "on"
    }

    /// Turns `dnssec-signing` on for the zone in knotd's running configuration when it is off
    /// (a zone served unsigned until its first keys). Success(true) when it was turned on:
    /// knotd then loads and signs the zone by itself.
    private func enableSigning(_ zone: String, notes: inout [String]) -> Result<Bool, KnotFailure> {
        guard let on = signingIsOn(zone) else {
            return .failure(KnotFailure("knotc conf-read zone[\(zone)].dnssec-signing: knotd's configuration could not be read"))
        }
        if on { return .success(false) }
        if let f = command.run(notes: &notes, knotc + ["conf-begin"]) { return .failure(KnotFailure(f)) }
        let set = command.run(notes: &notes, knotc + ["conf-set", "zone[\(zone)].dnssec-signing", "on"])
        if let f = set ?? command.run(notes: &notes, knotc + ["conf-commit"]) {
            _ = command.run(notes: &notes, knotc + ["conf-abort"], cancellable: false)
            return .failure(KnotFailure(f))
        }
        notes.append("\(zone): dnssec-signing turned on in knotd's running configuration; write `dnssec-signing: on` for this zone into knot.conf (a text configuration turns it off again at knotc reload or restart, until the KRS starts and turns it on again)")
        return .success(true)
    }

    /// What went wrong telling knotd, as one line.
    struct KnotFailure: Error { let line: String; init(_ line: String) { self.line = line } }

    /// At every start (so also after each `knotc reload`, which reads a text knot.conf again):
    /// signing on for each zone with a complete key set, as ``apply(_:now:retireAfter:)``
    /// left it. Returns what was run, for the log.
    func housekeeping(now: Int64) -> [String] {
        files.removeStaleTemporaries()
        var zones: [String] = []
        for k in files.allKeys() where !zones.contains(k.zone) { zones.append(k.zone) }
        var notes: [String] = []
        for zone in zones where hasCompleteKeySet(zone, now: now) {
            if case .failure(let f) = enableSigning(zone, notes: &notes) { notes.append(f.line) }
        }
        return notes
    }
}
