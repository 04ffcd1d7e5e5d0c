#if canImport(Glibc)
import Glibc
#endif
import TDNSCore
import TDNSCrypto
import TDNSWire

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
