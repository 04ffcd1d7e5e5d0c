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
    let stop: StopToken?

    /// True once the node stops; a store then puts its files back and throws
    /// ``interrupted(_:)`` instead of reporting a failure, so that nothing is recorded and
    /// the distribution is processed again at the next start.
    var stopped: Bool { stop?.isStopped == true }

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
            let outcome = try Subprocess.run(argv, timeout: timeout, cancelled: { cancellable && stop?.isStopped == true })
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

/// The key store `settings` ask for (`key_store`), with its server tools.
func makeKeyStore(_ settings: KRSSettings, command: ServerCommand) throws(TDNSError) -> any KeyStore {
    let directory = settings.keyDirectory ?? ""
    let tools = settings.server
    switch settings.keyStore {
    case .bind:
        return try BINDKeyStore(directory: directory, rndc: tools.rndc, rndcConf: tools.rndcConf, command: command)
    case .knot:
        return try KnotKeyStore(directory: directory, keymgr: tools.keymgr, knotc: tools.knotc,
                                knotConf: tools.knotConf, knotSocket: tools.knotSocket, command: command)
    case .nsd:
        return try NSDKeyStore(directory: directory, signer: tools.signer, zoneDirectory: tools.zoneDirectory ?? "",
                               signedDirectory: tools.signedDirectory ?? "", nsdControl: tools.nsdControl,
                               nsdConf: tools.nsdConf, command: command)
    case .none:
        return NoKeyStore()
    }
}
